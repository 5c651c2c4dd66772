/**
 * A hand-made MLflow pyfunc model of the shape issue 22 describes (MLmodel with a python_function
 * flavor, `loader_module`, `code/`, `data/`, a userId, movieId -> prediction signature,
 * python_env.yaml), scoring a run's ALS model with numpy alone: the baseline `mlflow models serve`
 * serves when the run has no MLflow Model of its own (`runs:/<id>/model`, h-mlmodel's work).
 * Unknown ids are refused with MLflow's INVALID_PARAMETER_VALUE (the bench scores known pairs only).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { writeNpy } from "../lib.mjs";

const LOADER = `"""The ALS model of an ms run: numpy dot products of the factor rows (bench baseline)."""
import os
import numpy as np
from mlflow.exceptions import MlflowException


class AlsModel:
    def __init__(self, data):
        load = lambda name: np.load(os.path.join(data, name))
        self.user_ids = load("user_ids.npy").astype(np.int64)
        self.item_ids = load("item_ids.npy").astype(np.int64)
        self.user_factors = load("user_factors.npy")
        self.item_factors = load("item_factors.npy")

    def _rows(self, known, ids, name):
        rows = np.minimum(np.searchsorted(known, ids), len(known) - 1)
        bad = known[rows] != ids
        if bad.any():
            raise MlflowException(f"{name}: {int(ids[np.argmax(bad)])} has no factors", error_code="INVALID_PARAMETER_VALUE")
        return rows

    def predict(self, model_input, params=None):
        users = np.asarray(model_input["userId"], dtype=np.int64)
        movies = np.asarray(model_input["movieId"], dtype=np.int64)
        u = self._rows(self.user_ids, users, "userId")
        m = self._rows(self.item_ids, movies, "movieId")
        uf = self.user_factors[u].astype(np.float64)
        mf = self.item_factors[m].astype(np.float64)
        return np.einsum("ij,ij->i", uf, mf)


def _load_pyfunc(data_path):
    return AlsModel(data_path)
`;

const SIGNATURE_IN = '[{"type": "long", "name": "userId", "required": true}, {"type": "long", "name": "movieId", "required": true}]';
const SIGNATURE_OUT = '[{"type": "double", "name": "prediction", "required": true}]';

/** Writes the model directory at `dir` from an ALS factors object (@ms/als `readFactors`). */
export function writeAlsPyfunc(dir, factors, versions) {
  mkdirSync(path.join(dir, "code"), { recursive: true });
  mkdirSync(path.join(dir, "data"), { recursive: true });
  writeFileSync(path.join(dir, "code", "ms_bench_als.py"), LOADER);
  const data = (name) => path.join(dir, "data", name);
  writeNpy(data("user_ids.npy"), Float64Array.from(factors.userIds), [factors.userIds.length]);
  writeNpy(data("item_ids.npy"), Float64Array.from(factors.itemIds), [factors.itemIds.length]);
  writeNpy(data("user_factors.npy"), factors.userFactors, [factors.userIds.length, factors.rank]);
  writeNpy(data("item_factors.npy"), factors.itemFactors, [factors.itemIds.length, factors.rank]);
  writeFileSync(
    path.join(dir, "MLmodel"),
    [
      "flavors:",
      "  python_function:",
      "    loader_module: ms_bench_als",
      "    code: code",
      "    data: data",
      "    env:",
      "      virtualenv: python_env.yaml",
      `    python_version: ${versions.python}`,
      `mlflow_version: ${versions.mlflow}`,
      "signature:",
      `  inputs: '${SIGNATURE_IN}'`,
      `  outputs: '${SIGNATURE_OUT}'`,
      "  params: null",
      "",
    ].join("\n"),
  );
  writeFileSync(
    path.join(dir, "python_env.yaml"),
    `python: ${versions.python}\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r requirements.txt\n`,
  );
  writeFileSync(path.join(dir, "requirements.txt"), `mlflow==${versions.mlflow}\nnumpy==${versions.numpy}\npandas==${versions.pandas}\n`);
}
