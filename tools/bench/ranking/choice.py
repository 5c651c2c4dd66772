"""How the rank step's `auto` choice rule and the refit's item cap move test nDCG@10, against the EASE of issue
21's outside check (lambda 500, every item), on the folds a ranking run exported.

For each fold in tools/bench/work/ranking/choices.json (written by auto-choices.mjs: every candidate's validation
nDCG, coverage and paired standard error, from the trials over 1000 items), a dense numpy EASE is refitted on the
fold's whole training part for every cap, lambda and beta of the grid, exactly as the rank step does (the cap's most
rated items, ties by the smaller id; scores scaled by count^-beta; the user's training items excluded; relevant =
every test item), and scored on the fold's test part for the bench's users. Then each rule picks a candidate from
the validation scores alone: of the EASE candidates within `margin` paired standard errors of the best, the widest
coverage (margin 0: the best). The table gives each rule and cap's test nDCG@10 and coverage (mean over the folds)
and its paired difference from the ease-500 peer's stored score (mean ± SE over the folds).

Usage: python choice.py [DATASET ...]   (the peers venv; after auto-choices.mjs and a ranking run with the
ease-500 peer; default the datasets choices.json holds)
"""

import json
import os
import sys

import numpy as np
import pandas as pd

BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "work", "ranking")
CAPS = [1000, 1500, 2000, 3000]
MARGINS = [1.0, 0.5, 0.25, 0.0]
K = 10
GAINS = 1 / np.log2(np.arange(2, K + 2))

choices = json.load(open(os.path.join(BASE, "choices.json")))
datasets = sys.argv[1:] or sorted({key.split("|")[0] for key in choices})


def fold_scores(dataset, fold, lambdas, betas):
    """Test nDCG@10 and coverage of every (cap, lambda, beta) refitted on the fold's training part."""
    d = os.path.join(BASE, dataset, f"fold-{fold}")
    train, test = pd.read_csv(os.path.join(d, "train.csv")), pd.read_csv(os.path.join(d, "test.csv"))
    users = np.array([int(s) for s in open(os.path.join(d, "users.txt")).read().split()])
    items, uids = np.unique(train.movieId), np.unique(train.userId)
    counts = train.movieId.value_counts().reindex(items).to_numpy(float)
    order = np.lexsort((items, -counts))
    x = np.zeros((len(uids), len(items)))
    x[np.searchsorted(uids, train.userId), np.searchsorted(items, train.movieId)] = 1
    rows = np.searchsorted(uids, users)
    relevant = test.groupby("userId").movieId.apply(set).to_dict()
    out = {}
    for cap in CAPS:
        keep = np.sort(order[:cap])
        xs = x[:, keep]
        gram = xs.T @ xs
        for lam in lambdas:
            p = np.linalg.inv(gram + lam * np.eye(len(keep)))
            b = -p / np.diag(p)
            np.fill_diagonal(b, 0)
            s0 = xs[rows] @ b
            s0[xs[rows] > 0] = -np.inf
            for beta in betas:
                top = np.argsort(-(s0 * counts[keep] ** -beta), axis=1, kind="stable")[:, :K]
                ndcg = []
                for i, u in enumerate(users):
                    rel = relevant.get(u)
                    if rel:
                        hits = np.array([items[keep[j]] in rel for j in top[i]], dtype=float)
                        ndcg.append((hits * GAINS).sum() / GAINS[: min(K, len(rel))].sum())
                out[(cap, lam, beta)] = (float(np.mean(ndcg)), len(set(top.ravel().tolist())) / len(items))
    return out


def pick(trials, margin):
    best = max(trials, key=lambda t: t["ndcg"])
    ease = [t for t in trials if t["model"] == "ease"]
    within = [t for t in ease if t["ndcg"] >= best["ndcg"] - margin * t["se"]]
    if not within:
        return max(ease, key=lambda t: t["ndcg"])
    return max(within, key=lambda t: (t["coverage"], t["ndcg"]))


print("| dataset | refit cap | rule (margin in SE) | test nDCG@10 | coverage | minus EASE λ 500, every item (paired) |")
print("| --- | --- | --- | --- | --- | --- |")
for dataset in datasets:
    folds = sorted(int(k.split("|")[1]) for k in choices if k.split("|")[0] == dataset)
    name = dataset.split("-100000")[0]
    ease500 = np.array([json.load(open(os.path.join(BASE, "scores", f"{name}_ease-500_{f}.json")))["ndcg"] for f in folds])
    trials = {f: choices[f"{dataset}|{f}"]["trials"] for f in folds}
    lambdas = sorted({t["lambda"] for f in folds for t in trials[f] if t["model"] == "ease"})
    betas = sorted({t["penalty"] for f in folds for t in trials[f] if t["model"] == "ease"})
    scored = {f: fold_scores(dataset, f, lambdas, betas) for f in folds}
    for cap in CAPS:
        for margin in MARGINS:
            got = [scored[f][(cap, (t := pick(trials[f], margin))["lambda"], t["penalty"])] for f in folds]
            ndcg = np.array([g[0] for g in got])
            diff = ndcg - ease500
            se = diff.std(ddof=1) / np.sqrt(len(diff))
            print(
                f"| {name} | {cap} | {margin:g} | {ndcg.mean():.4f} | {np.mean([g[1] for g in got]):.4f} | {diff.mean():+.4f} ± {se:.4f} |",
                flush=True,
            )
