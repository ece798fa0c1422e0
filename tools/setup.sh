#!/usr/bin/env bash
# Create .venv and install mvgg19_nb with its CPU backend, development tools and the ELPV data package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[cpu,dev,elpv,onnx]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null  # the kernel papermill and nbdev_test use
echo "set up: $(.venv/bin/python -c 'import keras, mvgg19_nb; print("mvgg19_nb", mvgg19_nb.__version__, "keras", keras.__version__, keras.backend.backend())')"
