"""How much nDCG@10 catalog coverage costs: a dense numpy EASE (the rank step's model) on ml-latest-small, over
its item cap, lambda and popularity penalty beta (scores s_uj * count_j^-beta, as @ms/rank's penalisePopularity).

Three seeded random 80/20 splits of every rating (per rating, not per user); the user's training items are
excluded from the candidates; relevant = every test item of the user (Microsoft Recommenders' rule, as the
ranking bench); coverage = distinct recommended items / training items. Prints a markdown table of the mean and
the standard error over the splits, beside popularity's nDCG.

Usage: python coverage.py RATINGS_CSV [SPLITS]   (numpy and pandas: the peers venv of tools/bench/ranking)
"""

import sys

import numpy as np
import pandas as pd

ratings = pd.read_csv(sys.argv[1])
splits = int(sys.argv[2]) if len(sys.argv) > 2 else 3
K = 10
ITEMS = [1000, 3000]
LAMBDAS = [200, 400]
BETAS = [0.0, 0.2, 0.3, 0.4, 0.5]


def ndcg_cov(lists, top, users, relevant, n_items):
    gains = 1 / np.log2(np.arange(2, K + 2))
    scores, listed = [], set()
    for ui, u in enumerate(users):
        rel = relevant.get(u)
        if not rel:
            continue
        items = top[lists[ui]]
        listed.update(items.tolist())
        hits = np.array([m in rel for m in items], dtype=float)
        scores.append(np.sum(hits * gains) / np.sum(gains[: min(K, len(rel))]))
    return float(np.mean(scores)), len(listed) / n_items


rows = {}
for seed in range(1, splits + 1):
    held = np.random.default_rng(seed).random(len(ratings)) < 0.2
    train, test = ratings[~held], ratings[held]
    users = np.sort(train.userId.unique())
    row_of = {u: i for i, u in enumerate(users)}
    counts = train.movieId.value_counts()
    relevant = test.groupby("userId").movieId.apply(set).to_dict()
    n_items = train.movieId.nunique()
    popular = counts.index.to_numpy()
    seen = train.groupby("userId").movieId.apply(set).to_dict()
    pop_lists = np.array([[j for j in range(len(popular)) if popular[j] not in seen[u]][:K] for u in users])
    rows.setdefault(("popularity", "", ""), []).append(ndcg_cov(pop_lists, popular, users, relevant, n_items))
    for m in ITEMS:
        top = popular[:m]
        col_of = {x: j for j, x in enumerate(top)}
        part = train[train.movieId.isin(col_of)]
        X = np.zeros((len(users), m))
        X[[row_of[u] for u in part.userId], [col_of[x] for x in part.movieId]] = 1
        gram = X.T @ X
        c = counts.loc[top].to_numpy(dtype=float)
        for lam in LAMBDAS:
            P = np.linalg.inv(gram + lam * np.eye(m))
            B = -P / np.diag(P)
            np.fill_diagonal(B, 0)
            S = X @ B
            S[X > 0] = -np.inf
            for beta in BETAS:
                lists = np.argsort(-(S * c**-beta), axis=1)[:, :K]
                rows.setdefault((m, lam, beta), []).append(ndcg_cov(lists, top, users, relevant, n_items))

print(f"| model | items | lambda | beta | nDCG@10 | coverage | ({splits} random 80/20 splits: mean ± SE) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for key, vals in rows.items():
    a = np.array(vals)
    mean, se = a.mean(axis=0), a.std(axis=0, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else np.zeros(2)
    name = "popularity" if key[0] == "popularity" else "EASE (numpy, dense)"
    m, lam, beta = ("", "", "") if key[0] == "popularity" else key
    print(f"| {name} | {m} | {lam} | {beta} | {mean[0]:.4f} ± {se[0]:.4f} | {mean[1]:.4f} ± {se[1]:.4f} | |")
