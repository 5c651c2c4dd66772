"""ms's model as an MLflow ``python_function`` model, with numpy alone.

MLflow imports this module (the MLmodel's ``loader_module``, shipped in the model's ``code/``) and
calls ``_load_pyfunc(data_path)`` with the model's ``data/`` directory, which holds ms's own files
as ms wrote them (the ms flavor) and ``ms-model.json`` saying which they are. The returned object's
``predict`` scores (userId, movieId) pairs exactly as ``ms predict`` does, each at its ``timestamp``
(seconds) when the input has that column, which a stacked model with time effects reads (without
it, every pair is scored at the end of the fit's training range, as ms does):

- keras, ``stacked`` features (the default): each pair's six features from the full fit's tables
  (``keras/tables/<field>.bin``), as @ms/fm's ``stackedPairFeatures`` computes them, then the
  dense network read from ``keras/model.json`` + ``keras/weights.bin`` (TensorFlow.js layers format);
- keras, ``factors``/``seed``/``factors+dot``: the movie's factors, then the user's (plus their dot
  product), then the network;
- als: the dot product of the two factor vectors (@ms/als ``predictWith``).

The cold-start rule is ms's (@ms/contracts' ``ColdStartRule``): a pair whose user or movie has no
factors (no training ratings) is scored mean + movie bias + user bias, clamped to [0.5, 5], from the
rule's numbers ms wrote into ``cold-start/`` (ids int32, damped biases float64; the mean in
``ms-model.json``); an id not there has bias 0. Added in ms's order in float64, so the same bits.
No TensorFlow and no Node: float32 matrix products in numpy, which agree with TensorFlow.js to
float32 rounding (~1e-6).
"""

import json
import math
import os

import numpy as np

FORMAT = 1
_DTYPES = {
    "int8": "<i1",
    "uint8": "<u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "float32": "<f4",
    "float64": "<f8",
}
_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "linear": lambda x: x,
}
USER_COLUMN = "userId"
MOVIE_COLUMN = "movieId"
TIME_COLUMN = "timestamp"
# @ms/fm's timebias.ts: days are floor(t / 86400); a (user row, day) key is user * DAY_SPAN + day + DAY_OFFSET.
_DAY_SECONDS = 86_400
_DAY_OFFSET = 5_000_000
_DAY_SPAN = 2 * _DAY_OFFSET


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_array(path, dtype, length):
    expected = length * np.dtype(_DTYPES[dtype]).itemsize
    size = os.path.getsize(path)
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, the manifest says {length} {dtype} values ({expected} bytes)")
    return np.fromfile(path, dtype=_DTYPES[dtype], count=length)


def _set_path(target, dotted, value):
    parts = dotted.split(".")
    for p in parts[:-1]:
        target = target.setdefault(p, {})
    target[parts[-1]] = value


def _read_tables(model_dir, record):
    """The full fit's tables as @ms/fm's writeTablesDir wrote them: scalars in the manifest, arrays in tables/."""
    tables = {}
    for name, value in record["scalars"].items():
        _set_path(tables, name, value)
    for a in record["arrays"]:
        _set_path(tables, a["name"], _read_array(os.path.join(model_dir, "tables", a["name"] + ".bin"), a["dtype"], a["length"]))
    return tables


class _Network:
    """The dense network of a TensorFlow.js layers model.json (Dense layers, relu / linear), in float32."""

    def __init__(self, model_dir):
        spec = _read_json(os.path.join(model_dir, "model.json"))
        topology = spec["modelTopology"]
        config = topology.get("model_config", topology)["config"]
        layers = config["layers"] if isinstance(config, dict) else config
        buffers = []
        entries = []
        for group in spec["weightsManifest"]:
            for p in group["paths"]:
                with open(os.path.join(model_dir, p), "rb") as f:
                    buffers.append(f.read())
            entries.extend(group["weights"])
        data = b"".join(buffers)
        weights = {}
        offset = 0
        for w in entries:
            if w.get("dtype", "float32") != "float32" or "quantization" in w:
                raise ValueError(f"weight {w['name']}: only unquantized float32 weights are supported")
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            weights[w["name"]] = np.frombuffer(data, dtype="<f4", count=n, offset=offset).reshape(w["shape"])
            offset += 4 * n
        if offset != len(data):
            raise ValueError(f"{model_dir}: the weights files hold {len(data)} bytes, the manifest names {offset}")
        self.layers = []
        for layer in layers:
            if layer["class_name"] == "InputLayer":
                continue
            if layer["class_name"] != "Dense":
                raise ValueError(f"layer {layer['class_name']}: only Dense layers are supported")
            c = layer["config"]
            activation = c.get("activation", "linear")
            if activation not in _ACTIVATIONS:
                raise ValueError(f"layer {c['name']}: activation {activation} is not supported")
            kernel = weights[f"{c['name']}/kernel"]
            bias = weights[f"{c['name']}/bias"] if c.get("use_bias", True) else np.zeros(kernel.shape[1], dtype=np.float32)
            self.layers.append((kernel, bias, _ACTIVATIONS[activation]))
        self.input_width = self.layers[0][0].shape[0]

    def __call__(self, x):
        h = np.asarray(x, dtype=np.float32)
        for kernel, bias, activation in self.layers:
            h = activation(h @ kernel + bias)
        return h[:, 0]


def _normal_cdf(x):
    """Phi(x) by the Chebyshev fit @ms/fm's ordinal output uses (Numerical Recipes' erfc), in float64."""
    z = np.abs(x) / math.sqrt(2)
    t = 1 / (1 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1 - 0.5 * erfc, 0.5 * erfc)


def _expected_rating(levels, cuts, f):
    """sum_k v_k (Phi(c_{k+1} - f) - Phi(c_k - f)), as @ms/fm's expectedRating."""
    c = len(levels)
    finite = len(cuts) == c - 1
    s = np.zeros_like(f)
    below = np.zeros_like(f)
    for k in range(c):
        if k == c - 1:
            upper = np.ones_like(f)
        else:
            cut = float(cuts[k] if finite else cuts[k + 1])
            upper = _normal_cdf(cut - f)
        s = s + float(levels[k]) * (upper - below)
        below = upper
    return s


def _row_dot(a, b):
    """Per-row dot products summed in order in float64, as ms's loops do."""
    s = np.zeros(a.shape[0], dtype=np.float64)
    for j in range(a.shape[1]):
        s += a[:, j].astype(np.float64) * b[:, j].astype(np.float64)
    return s


def _index_days(tt):
    """Adds the sorted (user row, day) keys of the user-day biases, once: what `_time_bias` searches."""
    tt["dayKey"] = tt["dayUser"].astype(np.int64) * _DAY_SPAN + tt["day"].astype(np.int64) + _DAY_OFFSET


def _time_bias(tt, u, m, times):
    """@ms/fm's timeBias: the bin's global and movie biases, plus the user's day bias where the fit has one.

    Without times, the end of the training range: the last bin, no day bias.
    """
    bins = int(tt["bins"])
    if times is None:
        return float(tt["global"][bins - 1]) + tt["itemBin"][m * bins + bins - 1].astype(np.float64)
    b = np.clip(np.floor((times - float(tt["start"])) / float(tt["binSeconds"])), 0, bins - 1).astype(np.int64)
    s = tt["global"][b].astype(np.float64) + tt["itemBin"][m * bins + b].astype(np.float64)
    keys = tt["dayKey"]
    wanted = u.astype(np.int64) * _DAY_SPAN + np.floor(times / _DAY_SECONDS).astype(np.int64) + _DAY_OFFSET
    if len(keys) == 0:
        return s
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    found = keys[at] == wanted
    return s + np.where(found, tt["dayBias"][at].astype(np.float64), 0.0)


def _stacked_features(t, u, m, times=None):
    """@ms/fm's stackedPairFeatures for rows u, m of the tables, at `times` (seconds; None: the end of the training range)."""
    r = int(t["rank"])
    uf = t["userFactors"].reshape(-1, r)[u]
    mf = t["itemFactors"].reshape(-1, r)[m]
    ui = t["userImplicit"].reshape(-1, r)[u]
    dot = _row_dot(uf, mf)
    implicit = _row_dot(ui, mf)
    time = _time_bias(t["time"], u, m, times) if "time" in t else np.zeros(len(u), dtype=np.float64)
    ub = t["userBias"][u].astype(np.float64)
    mb = t["itemBias"][m].astype(np.float64)
    latent = float(t["mu"]) + ub + mb + time + dot if t["withBiases"] else dot
    first = _expected_rating(t["ordinal"]["levels"], t["ordinal"]["cuts"], latent) if "ordinal" in t else latent
    cols = [first, ub, mb, t["userLogCount"][u], t["itemLogCount"][m], implicit]
    return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1).astype(np.float32)


class _ColdStartRule:
    """@ms/contracts' ColdStartRule from its tables: mean + b_movie + b_user, clamped to [0.5, 5]."""

    def __init__(self, data_path, spec):
        a = {r["name"]: _read_array(os.path.join(data_path, r["path"]), r["dtype"], r["length"]) for r in spec["arrays"]}
        self.mean = float(spec["mean"])
        self.movies = (a["movieIds"], a["movieBias"])
        self.users = (a["userIds"], a["userBias"])

    @staticmethod
    def _bias(table, ids):
        known, bias = table
        rows, missing = _lookup(known, ids)
        return np.where(missing, 0.0, bias[rows] if len(bias) else 0.0)

    def __call__(self, users, movies):
        p = (self.mean + self._bias(self.movies, movies)) + self._bias(self.users, users)
        return np.minimum(5.0, np.maximum(0.5, p))


class MsModel:
    """What `mlflow.pyfunc.load_model` hands out (wrapped): `predict(pairs)` -> float64 ratings."""

    def __init__(self, data_path):
        self.spec = _read_json(os.path.join(data_path, "ms-model.json"))
        if self.spec.get("format") != FORMAT:
            raise ValueError(f"{data_path}/ms-model.json: format {self.spec.get('format')}, this loader reads {FORMAT}")
        self.kind = self.spec["kind"]
        if self.kind not in ("keras", "als"):
            raise ValueError(f"{data_path}/ms-model.json: unknown model kind {self.kind}")
        f = self.spec["factors"]
        self.rank = int(f["rank"])
        self.cold_start = _ColdStartRule(data_path, self.spec["coldStart"])
        arrays = {a["name"]: _read_array(os.path.join(data_path, a["path"]), a["dtype"], a["length"]) for a in f["arrays"]}
        self.network = None
        self.tables = None
        self.features = None
        if self.kind == "keras":
            model_dir = os.path.join(data_path, self.spec["model"])
            details = _read_json(os.path.join(model_dir, "manifest.json"))["details"]
            self.features = details["features"]
            self.network = _Network(model_dir)
            if self.features == "stacked":
                self.tables = _read_tables(model_dir, details["stacked"]["tables"])
                if "time" in self.tables:
                    _index_days(self.tables["time"])
        if self.tables is not None:
            # A stacked network scores from its full fit's tables, whose ids are those with training ratings (the factors' ids).
            self.user_ids = self.tables["userIds"]
            self.movie_ids = self.tables["itemIds"]
        else:
            self.user_ids = arrays["userIds"]
            self.movie_ids = arrays["itemIds"]
            self.user_factors = arrays["userFactors"].reshape(-1, self.rank)
            self.item_factors = arrays["itemFactors"].reshape(-1, self.rank)

    def get_raw_model(self):
        """What `PyFuncModel.get_raw_model()` hands out: this object (its kind, and the known ids `user_ids`, `movie_ids`)."""
        return self

    def predict(self, model_input, params=None):
        users, movies, times = _pairs(model_input)
        u, user_missing = _lookup(self.user_ids, users)
        m, movie_missing = _lookup(self.movie_ids, movies)
        cold = user_missing | movie_missing
        if not cold.any():
            return self._predict_known(u, m, times)
        out = self.cold_start(users, movies)
        if not cold.all():
            out[~cold] = self._predict_known(u[~cold], m[~cold], None if times is None else times[~cold])
        return out

    def _predict_known(self, u, m, times=None):
        """Ratings of pairs whose rows u, m the model has (float64), at `times` where the model reads them."""
        if len(u) == 0:
            return np.zeros(0, dtype=np.float64)
        if self.kind == "als":
            return _row_dot(self.user_factors[u], self.item_factors[m])
        if self.tables is not None:
            x = _stacked_features(self.tables, u, m, times)
        else:
            mf = self.item_factors[m]
            uf = self.user_factors[u]
            x = np.concatenate([mf, uf], axis=1)
            if self.features == "factors+dot":
                x = np.concatenate([x, _row_dot(mf, uf).astype(np.float32)[:, None]], axis=1)
        return self.network(x).astype(np.float64)


def _lookup(known, ids):
    """Rows of `ids` in the sorted `known`, and which are not there."""
    if len(known) == 0:
        return np.zeros(len(ids), dtype=np.int64), np.ones(len(ids), dtype=bool)
    rows = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    return rows, known[rows] != ids


def _pairs(model_input):
    """The userId and movieId columns (and the optional timestamp column, seconds) of a DataFrame,
    a dict of columns, or an n x 2 (userId, movieId) or n x 3 (..., timestamp) array."""
    times = None
    if hasattr(model_input, "columns") or isinstance(model_input, dict):
        missing = [c for c in (USER_COLUMN, MOVIE_COLUMN) if c not in model_input]
        if missing:
            raise ValueError(f"the input has no {', '.join(missing)} column (it needs {USER_COLUMN} and {MOVIE_COLUMN})")
        users, movies = np.asarray(model_input[USER_COLUMN]), np.asarray(model_input[MOVIE_COLUMN])
        if TIME_COLUMN in model_input:
            times = np.asarray(model_input[TIME_COLUMN])
    else:
        a = np.asarray(model_input)
        if a.ndim != 2 or a.shape[1] not in (2, 3):
            raise ValueError(f"expected {USER_COLUMN}, {MOVIE_COLUMN}[, {TIME_COLUMN}] rows, got an array of shape {a.shape}")
        users, movies = a[:, 0], a[:, 1]
        if a.shape[1] == 3:
            times = a[:, 2]
    if times is not None:
        times = times.reshape(-1)
        if times.dtype.kind not in "iuf" or not np.all(np.isfinite(times.astype(np.float64))):
            raise ValueError(f"{TIME_COLUMN}: seconds since the epoch, finite numbers")
        times = times.astype(np.float64)
    out = []
    for name, col in ((USER_COLUMN, users), (MOVIE_COLUMN, movies)):
        col = col.reshape(-1)
        if col.dtype.kind not in "iu":
            if col.dtype.kind != "f" or not np.all(np.isfinite(col)) or not np.all(col == np.round(col)):
                raise ValueError(f"{name}: ids are integers")
        out.append(col.astype(np.int64))
    return out[0], out[1], times


def _load_pyfunc(data_path):
    return MsModel(data_path)
