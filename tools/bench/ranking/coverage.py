"""How much nDCG@10 catalog coverage costs: a dense numpy EASE (the rank step's model) on ml-latest-small, over
its item cap, lambda and popularity penalty beta (scores s_uj * count_j^-beta, as @ms/rank's penalisePopularity).

Three seeded random 80/20 splits of every rating (per rating, not per user); the user's training items are
excluded from the candidates; relevant = every test item of the user (Microsoft Recommenders' rule, as the
ranking bench); coverage = distinct recommended items / training items. Prints a markdown table of the mean and
the standard error over the splits, beside popularity's nDCG.

With --rp3beta it scores RP3beta instead (Paudel et al. 2017; Dacrema et al. 2019's strong graph baseline, known
for wide coverage): W = (P_iu^alpha)(P_ui^alpha) from the row-normalised user-item and item-user transitions,
column j divided by count_j^beta, the diagonal zeroed, each row's topK largest kept; scores X W.

Usage: python coverage.py RATINGS_CSV [SPLITS] [--rp3beta]   (numpy and pandas: the peers venv of tools/bench/ranking)
"""

import sys

import numpy as np
import pandas as pd

args = [a for a in sys.argv[1:] if not a.startswith("--")]
rp3beta = "--rp3beta" in sys.argv
ratings = pd.read_csv(args[0])
splits = int(args[1]) if len(args) > 1 else 3
K = 10
ITEMS = [1000, 3000]
LAMBDAS = [200, 400]
BETAS = [0.0, 0.2, 0.3, 0.4, 0.5]
RP3_ITEMS = [3000, None]  # None: every training item
RP3_ALPHAS = [0.5, 1.0]
RP3_BETAS = [0.3, 0.5, 0.7]
RP3_TOPK = [50, 200]


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
    if rp3beta:
        for m in RP3_ITEMS:
            top = popular[:m] if m else popular
            col_of = {x: j for j, x in enumerate(top)}
            part = train[train.movieId.isin(col_of)]
            X = np.zeros((len(users), len(top)), dtype=np.float32)
            X[[row_of[u] for u in part.userId], [col_of[x] for x in part.movieId]] = 1
            c = counts.loc[top].to_numpy(dtype=np.float32)
            p_ui = X / np.maximum(X.sum(axis=1, keepdims=True), 1)
            p_iu = (X / np.maximum(X.sum(axis=0, keepdims=True), 1)).T
            for alpha in RP3_ALPHAS:
                w0 = (p_iu**alpha) @ (p_ui**alpha)
                for beta in RP3_BETAS:
                    w = w0 / c[None, :] ** beta
                    np.fill_diagonal(w, 0)
                    for k in RP3_TOPK:
                        wk = w.copy()
                        np.put_along_axis(wk, np.argpartition(-wk, k, axis=1)[:, k:], 0, axis=1)
                        S = X @ wk
                        S[X > 0] = -np.inf
                        lists = np.argsort(-S, axis=1)[:, :K]
                        rows.setdefault(("rp3", m or "all", alpha, beta, k), []).append(ndcg_cov(lists, top, users, relevant, n_items))
        continue
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

if rp3beta:
    print(f"| model | items | alpha | beta | topK | nDCG@10 | coverage | ({splits} random 80/20 splits: mean ± SE) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
else:
    print(f"| model | items | lambda | beta | nDCG@10 | coverage | ({splits} random 80/20 splits: mean ± SE) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
for key, vals in rows.items():
    a = np.array(vals)
    mean, se = a.mean(axis=0), a.std(axis=0, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else np.zeros(2)
    if key[0] == "rp3":
        print(f"| RP3beta | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {mean[0]:.4f} ± {se[0]:.4f} | {mean[1]:.4f} ± {se[1]:.4f} | |")
        continue
    name = "popularity" if key[0] == "popularity" else "EASE (numpy, dense)"
    m, lam, beta = ("", "", "") if key[0] == "popularity" else key
    spare = " |" if rp3beta else ""  # the RP3beta table has one more setting column
    print(f"| {name} | {m} | {lam} | {beta} |{spare} {mean[0]:.4f} ± {se[0]:.4f} | {mean[1]:.4f} ± {se[1]:.4f} | |")
