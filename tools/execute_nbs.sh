#!/usr/bin/env bash
# Execute the tutorial notebooks in place (papermill, in nbs/) so the book renders their outputs, then clean
# them as nbdev does. Run after editing a notebook, before committing: the book shows what this run printed.
#   bash tools/execute_nbs.sh                      # all of nbs/index.ipynb and nbs/NN_*.ipynb
#   bash tools/execute_nbs.sh nbs/01_model.ipynb   # some
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_HOME="${KERAS_HOME:-$PWD/.keras_home}" TF_CPP_MIN_LOG_LEVEL=3  # no backend start-up logs in the outputs
[ $# -gt 0 ] || set -- nbs/index.ipynb nbs/[0-9]*.ipynb
for f in "$@"; do
  echo "executing $f"
  .venv/bin/papermill --cwd "$(dirname "$f")" -k python3 --no-progress-bar "$f" "$f"
done
# TensorFlow prints its start-up lines (absl's "WARNING: All log messages before absl::InitializeLog()", oneDNN's
# port.cc note, the CPU-feature guard) from C++ whatever TF_CPP_MIN_LOG_LEVEL says, and the kernel records them
# as stderr outputs: drop those lines (the pattern the results pages use), and an output only if nothing else is left.
.venv/bin/python - "$@" <<'PY'
import sys, nbformat
from mvgg19_nb.experiment import BACKEND_LOG
for f in sys.argv[1:]:
    nb, removed = nbformat.read(f, as_version=4), 0
    for c in nb.cells:
        if c.cell_type != 'code': continue
        outs = []
        for o in c.outputs:
            if o.output_type == 'stream' and o.name == 'stderr':
                lines = o.text.splitlines(keepends=True)
                kept = [l for l in lines if not BACKEND_LOG.match(l)]
                removed += len(lines) - len(kept)
                if len(kept) < len(lines) and not ''.join(kept).strip(): continue
                o.text = ''.join(kept)
            outs.append(o)
        c.outputs = outs
    nbformat.write(nb, f)
    print(f"{f}: {removed} backend start-up lines removed")
PY
.venv/bin/nbdev_clean
