#!/usr/bin/env bash
# Execute the tutorial notebooks in place so the book renders their outputs, then clean them as nbdev does.
# Run after editing a notebook, before committing: the book (execute_notebooks: off) shows what this run printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_HOME="${KERAS_HOME:-$PWD/.keras_home}" MPLBACKEND=module://matplotlib_inline.backend_inline
for nb in "${@:-nbs/index.ipynb nbs/[0-9]*.ipynb}"; do
  for f in $nb; do
    echo "executing $f"
    (cd "$(dirname "$f")" && ../.venv/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900 "$(basename "$f")" 2>&1 | grep -v -E "^(WARNING|I0000|To enable)" | tail -2)
  done
done
.venv/bin/nbdev_clean
