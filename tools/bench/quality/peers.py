"""Scores the recommender peers on one train/test pair of files written by bench.mjs.

Every test row is scored, cold ones included, each peer by its own rule:
- Surprise (BaselineOnly, SVD, SVD++): an unknown user or movie contributes nothing, so the
  prediction is the global mean plus whichever baseline (and no factor term) is known.
- myFM: an id unseen in training has an all-zero one-hot row (and no implicit row), so the
  prediction is w0 plus the terms of whatever is known (a date unseen in training: no date term).
myFM's implicit and time features are built as its documentation builds them
(doc/source/relation-blocks.rst, after Rendle et al. 2019): the user block is [one-hot user,
the movies the user rated in training / sqrt(their count)], the movie block [one-hot movie, the
users who rated it in training / sqrt(their count)], both as RelationBlocks, and the day of the
rating one-hot in X.

Prints one JSON object: {"test_rows": n, "cold_rows": c, NAME: {"test_rmse": x, "seconds": s}, ...}.
Usage: python peers.py TRAIN_CSV TEST_CSV [--only NAME,NAME]   (NAME: a key of PEERS below)
"""

import json
import os
import sys
import time

# myFM draws a tqdm progress bar per fit; the bench reads stdout only and keeps stderr for errors.
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd
import scipy.sparse as sps

train_path, test_path = sys.argv[1], sys.argv[2]
only = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[3] == "--only" else None
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
truth = test.rating.to_numpy()
cold = ~(test.userId.isin(train.userId) & test.movieId.isin(train.movieId))


def rmse(pred):
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=float) - truth) ** 2)))


def surprise_peer(make):
    from surprise import Dataset, Reader

    data = Dataset.load_from_df(train[["userId", "movieId", "rating"]], Reader(rating_scale=(0.5, 5.0)))
    algo = make()
    algo.fit(data.build_full_trainset())
    return [algo.predict(u, m).est for u, m in zip(test.userId, test.movieId)]


def one_hot(positions, width):
    """Rows of a one-hot matrix; a position of -1 (unseen in training) is an all-zero row."""
    known = positions >= 0
    rows = np.nonzero(known)[0]
    return sps.csr_matrix((np.ones(len(rows)), (rows, positions[known])), shape=(len(positions), width))


def side_block(frame, own, other, own_index, other_index, implicit):
    """A RelationBlock over the distinct ids of frame[own]: one-hot, then the implicit row if asked."""
    ids, inverse = np.unique(frame[own].to_numpy(), return_inverse=True)
    positions = own_index.get_indexer(ids)
    parts = [one_hot(positions, len(own_index))]
    if implicit:
        tr_own = own_index.get_indexer(train[own])
        tr_other = other_index.get_indexer(train[other])
        counts = np.bincount(tr_own, minlength=len(own_index))
        rated = sps.csr_matrix((1 / np.sqrt(counts[tr_own]), (tr_own, tr_other)), shape=(len(own_index), len(other_index)))
        known = (positions >= 0).astype(float)
        parts.append(sps.diags(known) @ rated[np.maximum(positions, 0)])
    import myfm

    return myfm.RelationBlock(inverse, sps.hstack(parts, format="csr"))


def myfm_peer(implicit, dated, rank=10, samples=200):
    import myfm

    users = pd.Index(np.unique(train.userId))
    movies = pd.Index(np.unique(train.movieId))

    def blocks(frame):
        return [
            side_block(frame, "userId", "movieId", users, movies, implicit),
            side_block(frame, "movieId", "userId", movies, users, implicit),
        ]

    def day(frame):
        return (frame.timestamp.to_numpy() // 86400).astype(np.int64)

    days = pd.Index(np.unique(day(train)))
    x_train = one_hot(days.get_indexer(day(train)), len(days)) if dated else None
    x_test = one_hot(days.get_indexer(day(test)), len(days)) if dated else None
    fm = myfm.MyFMRegressor(rank=rank, random_seed=42)
    fm.fit(x_train, train.rating.to_numpy(), X_rel=blocks(train), n_iter=samples, n_kept_samples=samples)
    return fm.predict(x_test, X_rel=blocks(test))


def _surprise(name):
    from surprise import SVD, BaselineOnly, SVDpp

    return {
        "BaselineOnly": lambda: BaselineOnly(verbose=False),
        "SVD": lambda: SVD(random_state=42),
        # cache_ratings only trades memory for speed; the fit is the same.
        "SVDpp": lambda: SVDpp(random_state=42, cache_ratings=True),
    }[name]


PEERS = {
    "surprise-baseline": lambda: surprise_peer(_surprise("BaselineOnly")),
    "surprise-svd": lambda: surprise_peer(_surprise("SVD")),
    "surprise-svdpp": lambda: surprise_peer(_surprise("SVDpp")),
    "myfm": lambda: myfm_peer(implicit=False, dated=False),
    "myfm-implicit": lambda: myfm_peer(implicit=True, dated=False),
    "myfm-implicit-time": lambda: myfm_peer(implicit=True, dated=True),
}

out = {"test_rows": int(len(test)), "cold_rows": int(cold.sum())}
for name, run in PEERS.items():
    if only is None or name in only:
        started = time.time()
        pred = run()
        out[name] = {"test_rmse": rmse(pred), "seconds": time.time() - started}
print(json.dumps(out))
