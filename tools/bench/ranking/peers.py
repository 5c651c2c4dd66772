"""Top-k lists of the ranking peers on one train file written by bench.mjs (the pipeline's split).

Every peer sees the training rows as binary implicit feedback (a rating, whatever its value, is an
interaction: the relevance rule of the metrics, every test item, treats them so too), fits, and
writes for each user of USERS_FILE its top k training items that user has not rated in training,
ties broken by the smaller movie id. No metric is computed here: bench.mjs computes every model's
with @ms/rank's one metrics function, so the figures are comparable.

Hyperparameters: the library's defaults or its documented example, none tuned on these data:
- implicit-bpr: implicit 0.7 BayesianPersonalizedRanking defaults (factors 100, learning rate 0.01,
  regularization 0.01, 100 iterations).
- implicit-als: implicit 0.7 AlternatingLeastSquares defaults (factors 100, regularization 0.01,
  alpha 1.0, 15 iterations), confidence 1 + alpha on a rated cell (Hu, Koren, Volinsky 2008).
- ease: Steck 2019's closed form in numpy with the pipeline's rank_lambda (--lambda) over the
  pipeline's model items (--max-items, its rank_max_items most-rated training items): the same
  model as the rank step, written independently (dense B, no pruning to rank_neighbors).
- ease-all: the same over every training item (what the item cap costs or gains).
- ease-500: EASE over every training item at lambda 500, whatever --lambda says: the "30-line EASE
  (lambda 500)" issue 21's outside check fits, which the default must lead.
- lightfm-warp: LightFM 1.17 with loss='warp' and its defaults otherwise (10 components, learning
  rate 0.05), 30 epochs as its README's MovieLens example fits.
- cornac-bpr: Cornac 3.0 BPR as its README's quick start (k 10, 200 iterations, learning rate
  0.001, lambda_reg 0.01).

Usage: python peers.py TRAIN_CSV USERS_FILE OUT_JSON --only NAME[,NAME] [--k 10] [--lambda 500] [--max-items 2500]
Prints {"NAME": {"fit_seconds": s, "recommend_seconds": s}} on stdout; OUT_JSON gets
{"NAME": {"users": [...], "items": [[...], ...]}}. Threads: MS_RANKING_THREADS (default 2).
"""

import argparse
import json
import os
import sys
import time

THREADS = int(os.environ.get("MS_RANKING_THREADS", "2"))
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(THREADS))
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sps  # noqa: E402

SEED = 42


def top_k(scores, seen, k):
    """Per row: the k best columns, training items excluded, ties by the smaller column (= movie id, columns sorted)."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    scores[seen.nonzero()] = -np.inf
    columns = np.arange(scores.shape[1])
    out = []
    for row in scores:
        # lexsort sorts by its last key first: the score descending, then the column ascending.
        chosen = np.lexsort((columns, -row))[:k]
        out.append(chosen[np.isfinite(row[chosen])])
    return out


def ease(x, lam):
    """B = I - P diagMat(1 / diag(P)), P = (X^T X + lambda I)^-1, diag(B) = 0 (Steck 2019, eq. 8)."""
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def fit_peer(name, x, lam, max_items):
    """Fits one peer on the users x items matrix; returns a function scoring a block of user rows."""
    if name in ("ease-all", "ease-500"):
        b = ease(x, 500.0 if name == "ease-500" else lam)
        return lambda rows: (x[rows] @ b)
    if name == "ease":
        # The rank step's model items: the max_items most-rated (ties: the smaller id = column);
        # every other item is never recommended (score -inf), as in the rank step.
        counts = np.asarray(x.sum(axis=0)).ravel()
        keep = np.sort(np.lexsort((np.arange(x.shape[1]), -counts))[:max_items])
        sub = x[:, keep]
        b = ease(sub, lam)

        def score(rows):
            out = np.full((len(rows), x.shape[1]), -np.inf)
            out[:, keep] = (sub[rows] @ b)
            return out

        return score
    if name in ("implicit-bpr", "implicit-als"):
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        make = BayesianPersonalizedRanking if name == "implicit-bpr" else AlternatingLeastSquares
        model = make(random_state=SEED, num_threads=THREADS)
        model.fit(x.tocsr(), show_progress=False)
        return lambda rows: model.user_factors[rows] @ model.item_factors.T
    if name == "lightfm-warp":
        from lightfm import LightFM

        model = LightFM(loss="warp", random_state=SEED)
        model.fit(x.tocoo(), epochs=30, num_threads=THREADS)
        # predict(u, i) = user bias + item bias + <user, item> (features are the identity here).
        user_bias, user_emb = model.get_user_representations()
        item_bias, item_emb = model.get_item_representations()
        return lambda rows: user_emb[rows] @ item_emb.T + item_bias + user_bias[rows, None]
    if name == "cornac-bpr":
        import cornac

        coo = x.tocoo()
        data = cornac.data.Dataset.from_uir(list(zip(coo.row.astype(str), coo.col.astype(str), np.ones(coo.nnz))), seed=SEED)
        model = cornac.models.BPR(k=10, max_iter=200, learning_rate=0.001, lambda_reg=0.01, seed=SEED, verbose=False)
        model.fit(data)
        # Cornac renumbers users and items in the order it met them: map back to our columns.
        col_of = np.array([int(i) for i in data.item_ids])
        row_of = {int(u): j for j, u in enumerate(data.user_ids)}

        # BPR's score(u) = i_biases + u_factors[u] @ i_factors.T, for every item at once.
        rows_of = np.array([row_of[int(u)] for u in range(x.shape[0])])
        full = np.full((x.shape[0], x.shape[1]), -np.inf)
        full[:, col_of] = model.u_factors[rows_of] @ model.i_factors.T + model.i_biases
        return lambda rows: full[rows]

    raise SystemExit(f"peers.py: unknown peer {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("users")
    ap.add_argument("out")
    ap.add_argument("--only", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--lambda", dest="lam", type=float, default=500.0)
    ap.add_argument("--max-items", dest="max_items", type=int, default=2500)
    a = ap.parse_args()
    train = pd.read_csv(a.train)
    user_ids = np.unique(train.userId.to_numpy())
    item_ids = np.unique(train.movieId.to_numpy())
    rows = np.searchsorted(user_ids, train.userId.to_numpy())
    cols = np.searchsorted(item_ids, train.movieId.to_numpy())
    x = sps.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids)))
    x.sum_duplicates()
    x.data[:] = 1.0
    wanted = np.array([int(s) for s in open(a.users).read().split()], dtype=np.int64)
    pos = np.searchsorted(user_ids, wanted)
    if np.any(pos >= len(user_ids)) or np.any(user_ids[np.minimum(pos, len(user_ids) - 1)] != wanted):
        raise SystemExit(f"peers.py: {a.users}: a user without training rows")
    summary, lists = {}, {}
    for name in a.only.split(","):
        started = time.perf_counter()
        score = fit_peer(name, x, a.lam, a.max_items)
        fitted = time.perf_counter()
        items = []
        for start in range(0, len(pos), 256):
            block = pos[start : start + 256]
            s = score(block)
            s = s.toarray() if sps.issparse(s) else np.asarray(s)
            items.extend([item_ids[c].tolist() for c in top_k(s, x[block], a.k)])
        summary[name] = {"fit_seconds": fitted - started, "recommend_seconds": time.perf_counter() - fitted}
        lists[name] = {"users": wanted.tolist(), "items": items}
        print(f"peers.py: {name} fit {fitted - started:.1f}s", file=sys.stderr)
    with open(a.out + ".tmp", "w") as f:
        json.dump(lists, f)
    os.replace(a.out + ".tmp", a.out)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
