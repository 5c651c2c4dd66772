#!/usr/bin/env bash
# The virtualenv with a pinned `mlflow` from PyPI for the @ms/tracking and @ms/driver tests (real
# `mlflow server`, real Python client); prints its directory. Built, pinned and locked by the one
# venv script: see tools/python/ensure-venv.sh (MS_MLFLOW_VENV, MS_MLFLOW_VERSION, MS_PYTHON).
exec "$(dirname "$0")/../python/ensure-venv.sh" mlflow
