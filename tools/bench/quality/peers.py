"""Scores the recommender peers on exactly our split.

Reads a CSV written by bench.mjs (userId, movieId, rating, train: 1 = training part of splitMask)
and fits each peer on the training rows, then scores the test rows whose user and movie are in the
training part (the rows ms-als and ms-keras score; cold rows are dropped as they drop them).
Prints one JSON object: {name: {"test_rmse": x, "seconds": s}}.
Usage: python peers.py SPLIT_CSV [--only NAME,NAME]
"""
import json
import sys
import time

import numpy as np
import pandas as pd

path = sys.argv[1]
only = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[2] == "--only" else None
df = pd.read_csv(path)
train = df[df.train == 1]
test = df[df.train == 0]
test = test[test.userId.isin(train.userId.unique()) & test.movieId.isin(train.movieId.unique())]
out = {"test_rows": int(len(test))}


def rmse(pred):
    return float(np.sqrt(np.mean((np.asarray(pred) - test.rating.to_numpy()) ** 2)))


def surprise_peer(name, algo):
    from surprise import Dataset, Reader

    data = Dataset.load_from_df(train[["userId", "movieId", "rating"]], Reader(rating_scale=(0.5, 5.0)))
    trainset = data.build_full_trainset()
    t = time.time()
    algo.fit(trainset)
    pred = [algo.predict(u, m).est for u, m in zip(test.userId, test.movieId)]
    out[name] = {"test_rmse": rmse(pred), "seconds": time.time() - t}


def myfm_peer(name, rank, samples):
    import myfm
    import scipy.sparse as sps

    users = {u: i for i, u in enumerate(train.userId.unique())}
    movies = {m: i + len(users) for i, m in enumerate(train.movieId.unique())}
    width = len(users) + len(movies)

    def one_hot(frame):
        rows = np.repeat(np.arange(len(frame)), 2)
        cols = np.column_stack([frame.userId.map(users).to_numpy(), frame.movieId.map(movies).to_numpy()]).ravel()
        return sps.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(frame), width))

    x_train, x_test = one_hot(train), one_hot(test)
    t = time.time()
    fm = myfm.MyFMRegressor(rank=rank, random_seed=42)
    fm.fit(x_train, train.rating.to_numpy(), n_iter=samples, n_kept_samples=samples)
    out[name] = {"test_rmse": rmse(fm.predict(x_test)), "seconds": time.time() - t}


from surprise import SVD, BaselineOnly, SVDpp  # noqa: E402

peers = {
    "Surprise BaselineOnly": lambda n: surprise_peer(n, BaselineOnly(verbose=False)),
    "Surprise SVD (defaults)": lambda n: surprise_peer(n, SVD(random_state=42)),
    "Surprise SVD++ (defaults)": lambda n: surprise_peer(n, SVDpp(random_state=42)),
    "myFM Bayesian FM, rank 10, 200 Gibbs samples": lambda n: myfm_peer(n, 10, 200),
}
for name, run in peers.items():
    if only is None or any(o in name for o in only):
        run(name)
print(json.dumps(out))
