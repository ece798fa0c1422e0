#!/usr/bin/env bash
# Create .venv and install mvgg19_nb with its CPU backend, development tools and the ELPV data package.
set -euo pipefail
cd "$(dirname "$0")/.."
# Graphviz's `dot` draws the model diagram of the book's model chapter (keras.utils.plot_model, through pydot).
if ! command -v dot >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing graphviz (apt-get) for the model diagram"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz \
        >/dev/null; } ||
      echo "WARNING: apt-get could not install graphviz: nbs/01_model.ipynb prints a note instead of the model diagram"
  else
    echo "NOTE: graphviz's 'dot' is missing and this is not root with apt-get: install graphviz (e.g." \
         "'sudo apt-get install graphviz') to draw the model diagram of nbs/01_model.ipynb; it prints a note without it"
  fi
fi
# Debian's Chromium and its driver: the book's browser check (tools/browser_check.py, run by CI) opens every page.
if ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver (apt-get) for the book's browser check"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        chromium-driver >/dev/null; } || echo "WARNING: apt-get could not install chromium: the browser check is skipped"
  else
    echo "NOTE: chromium and chromedriver are missing: install them (sudo apt-get install chromium chromium-driver) to" \
         "run the book's browser check (tools/browser_check.py)"
  fi
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[cpu,dev,elpv,onnx,ray]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null  # the kernel papermill and nbdev_test use
echo "set up: $(.venv/bin/python -c 'import keras, mvgg19_nb; print("mvgg19_nb", mvgg19_nb.__version__, "keras", keras.__version__, keras.backend.backend())')"
