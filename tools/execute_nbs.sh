#!/usr/bin/env bash
# Execute the tutorial notebooks in place (papermill, in nbs/) so the book renders their outputs, then clean
# them as nbdev does. Run after editing a notebook, before committing: the book shows what this run printed.
#   bash tools/execute_nbs.sh                      # all of nbs/index.ipynb and nbs/NN_*.ipynb
#   bash tools/execute_nbs.sh nbs/03_model.ipynb   # some
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_HOME="${KERAS_HOME:-$PWD/.keras_home}" TF_CPP_MIN_LOG_LEVEL=3  # no backend start-up logs in the outputs
[ $# -gt 0 ] || set -- nbs/index.ipynb nbs/[0-9]*.ipynb
for f in "$@"; do
  echo "executing $f"
  .venv/bin/papermill --cwd "$(dirname "$f")" -k python3 --no-progress-bar "$f" "$f"
done
.venv/bin/nbdev_clean
