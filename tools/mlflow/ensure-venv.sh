#!/usr/bin/env bash
# Creates, or reuses when already complete, a Python virtualenv holding a pinned `mlflow` from PyPI,
# used by the @ms/tracking tests (real `mlflow server`, real Python client) and by .ci/run.
#
#   tools/mlflow/ensure-venv.sh            # prints the venv directory on stdout
#
# Environment:
#   MS_MLFLOW_VENV     where the venv lives (default: ~/.cache/ms/mlflow-venv)
#   MS_MLFLOW_VERSION  the mlflow version to pin (default below; a different one rebuilds the venv)
#   MS_PYTHON          the interpreter to build it with (default: python3)
#
# A venv is not relocatable (its scripts hold absolute paths), so it is built in place; the marker
# file is written last, so a venv whose install was interrupted is rebuilt rather than reused.
# flock keeps two test runs from building it at the same time.
set -euo pipefail

MLFLOW_VERSION="${MS_MLFLOW_VERSION:-3.17.2}"
VENV="${MS_MLFLOW_VENV:-$HOME/.cache/ms/mlflow-venv}"
PYTHON="${MS_PYTHON:-python3}"
MARKER="$VENV/.ms-mlflow-$MLFLOW_VERSION"

ready() { [ -f "$MARKER" ] && [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/mlflow" ]; }

if ready; then echo "$VENV"; exit 0; fi

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ready; then echo "$VENV"; exit 0; fi

start=$(date +%s)
echo "ensure-venv: building $VENV with mlflow==$MLFLOW_VERSION ($("$PYTHON" --version 2>&1))" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" >&2
"$VENV/bin/python" -c "import mlflow, sys; assert mlflow.__version__ == sys.argv[1], mlflow.__version__" "$MLFLOW_VERSION"
touch "$MARKER"
echo "ensure-venv: ready in $(( $(date +%s) - start ))s" >&2
echo "$VENV"
