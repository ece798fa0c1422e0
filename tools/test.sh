#!/usr/bin/env bash
# The project's tests: every notebook under nbdev_test, its `#| slow` cells included, then pytest. Nothing is written
# to ~ (KERAS_HOME). For a quick check of one notebook, plain `nbdev_test --path nbs/NN_x.ipynb` skips the cells marked
# `#| slow` (settings.ini `tst_flags`): model training and exports, which take most of the notebooks' test time.
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_HOME="${KERAS_HOME:-$PWD/.keras_home}"  # no MPLBACKEND here: the papermill kernels must keep the inline backend
.venv/bin/nbdev_test --n_workers 1 --timing --flags slow
.venv/bin/python -m pytest -q -p no:cacheprovider tests
