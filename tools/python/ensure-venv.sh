#!/usr/bin/env bash
# Creates, or reuses when already complete, a Python virtualenv with pinned packages from PyPI, used
# by the tracking tests (real `mlflow server` and client), the interoperability tests (tools/interop)
# and the comparison benchmark (tools/bench/compare).
#
#   tools/python/ensure-venv.sh          # the Spark venv: pyspark, pyarrow, numpy; prints its directory
#   tools/python/ensure-venv.sh mlflow   # the MLflow venv (tools/mlflow/ensure-venv.sh calls this)
#   tools/python/ensure-venv.sh keras    # the Keras venv: tensorflow-cpu, pyarrow, numpy
#   tools/python/ensure-venv.sh peers    # the recommender peers: scikit-surprise, myfm, numpy, pandas (the quality
#                                        # bench, tools/bench/quality; scipy, which peers.py also imports, comes with myfm),
#                                        # and implicit, lightfm, cornac (the ranking bench, tools/bench/ranking)
#
# The Keras venv is separate because TensorFlow is large (~600 MB installed): the benchmarks and one
# test (packages/keras/src/tensorflow.slow.test.ts, ms-keras against Keras' own model.fit) need it.
#
# Environment:
#   MS_SPARK_VENV   where the Spark venv lives (default: ~/.cache/ms/spark-venv)
#   MS_MLFLOW_VENV  where the MLflow venv lives (default: ~/.cache/ms/mlflow-venv)
#   MS_MLFLOW_VERSION  the mlflow version (default below)
#   MS_KERAS_VENV   where the Keras venv lives (default: ~/.cache/ms/keras-venv)
#   MS_PEERS_VENV   where the peers venv lives (default: ~/.cache/ms/peers-venv)
#   MS_PYTHON       the interpreter to build them with (default: python3; needs 3.10-3.12)
#
# Versions are pinned below; the marker file name holds all of them, so changing a pin rebuilds the
# venv. A venv is not relocatable (its scripts hold absolute paths), so it is built in place; the
# marker file is written last, so a venv whose install was interrupted is rebuilt rather than
# reused. flock keeps two runs from building it at the same time.
set -euo pipefail

# pyspark 4.0 runs on Java 17 and 21 and Python 3.9+; pyspark.ml needs numpy.
PYSPARK_VERSION=4.0.1
PYARROW_VERSION=21.0.0
NUMPY_VERSION=2.2.6
TENSORFLOW_VERSION=2.20.0
MLFLOW_VERSION="${MS_MLFLOW_VERSION:-3.17.2}"
# scikit-surprise ships an sdist only: pip builds it with its declared build requirements (Cython,
# numpy) in an isolated environment, which needs a C compiler (gcc is on the machine). myfm ships wheels.
SURPRISE_VERSION=1.1.5
MYFM_VERSION=0.4.0
PANDAS_VERSION=2.3.3
# The ranking peers. implicit and cornac ship wheels. LightFM ships an sdist whose setup.py reads a
# flag from __builtins__ that pip's isolated build environment lacks ("'dict' object has no
# attribute '__LIGHTFM_SETUP__'"), so it is built without isolation, after its build requirements
# (setuptools, wheel, Cython: POST_PKGS below).
IMPLICIT_VERSION=0.7.3
CORNAC_VERSION=3.0.1
LIGHTFM_VERSION=1.17
SETUPTOOLS_VERSION=80.9.0
CYTHON_VERSION=3.1.4

KIND="${1:-spark}"
POST_PKGS=()
PYTHON="${MS_PYTHON:-python3}"
case "$KIND" in
  spark)
    VENV="${MS_SPARK_VENV:-$HOME/.cache/ms/spark-venv}"
    PKGS=("pyspark==$PYSPARK_VERSION" "pyarrow==$PYARROW_VERSION" "numpy==$NUMPY_VERSION")
    CHECK="import pyspark, pyarrow, numpy; assert pyspark.__version__ == '$PYSPARK_VERSION', pyspark.__version__"
    ;;
  mlflow)
    VENV="${MS_MLFLOW_VENV:-$HOME/.cache/ms/mlflow-venv}"
    PKGS=("mlflow==$MLFLOW_VERSION")
    CHECK="import mlflow; assert mlflow.__version__ == '$MLFLOW_VERSION', mlflow.__version__"
    ;;
  keras)
    VENV="${MS_KERAS_VENV:-$HOME/.cache/ms/keras-venv}"
    PKGS=("tensorflow-cpu==$TENSORFLOW_VERSION" "pyarrow==$PYARROW_VERSION")
    CHECK="import tensorflow as tf, pyarrow; assert tf.__version__ == '$TENSORFLOW_VERSION', tf.__version__"
    ;;
  peers)
    VENV="${MS_PEERS_VENV:-$HOME/.cache/ms/peers-venv}"
    PKGS=("numpy==$NUMPY_VERSION" "pandas==$PANDAS_VERSION" "scikit-surprise==$SURPRISE_VERSION" "myfm==$MYFM_VERSION"
      "implicit==$IMPLICIT_VERSION" "cornac==$CORNAC_VERSION" "setuptools==$SETUPTOOLS_VERSION" "wheel==0.45.1" "cython==$CYTHON_VERSION")
    POST_PKGS=("lightfm==$LIGHTFM_VERSION")
    CHECK="import surprise, myfm, numpy, pandas, implicit, cornac, lightfm; assert surprise.__version__ == '$SURPRISE_VERSION', surprise.__version__; assert implicit.__version__ == '$IMPLICIT_VERSION', implicit.__version__"
    ;;
  *)
    echo "ensure-venv: unknown kind '$KIND' (expected spark, mlflow, keras or peers)" >&2
    exit 2
    ;;
esac
MARKER="$VENV/.ms-$(printf '%s_' "${PKGS[@]}" "${POST_PKGS[@]}" | tr '=' '-')"

ready() { [ -f "$MARKER" ] && [ -x "$VENV/bin/python" ]; }

if ready; then echo "$VENV"; exit 0; fi

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if ready; then echo "$VENV"; exit 0; fi

start=$(date +%s)
echo "ensure-venv: building $VENV with ${PKGS[*]} ($("$PYTHON" --version 2>&1))" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PKGS[@]}" >&2
if [ "${#POST_PKGS[@]}" -gt 0 ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation "${POST_PKGS[@]}" >&2
fi
"$VENV/bin/python" -c "$CHECK"
touch "$MARKER"
echo "ensure-venv: ready in $(( $(date +%s) - start ))s" >&2
echo "$VENV"
