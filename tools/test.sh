#!/usr/bin/env bash
# The project's tests: every notebook under nbdev_test, then pytest. Nothing is written to ~ (KERAS_HOME).
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_HOME="${KERAS_HOME:-$PWD/.keras_home}"  # no MPLBACKEND here: the papermill kernels must keep the inline backend
.venv/bin/nbdev_test --n_workers 1 --timing
.venv/bin/python -m pytest -q -p no:cacheprovider tests
