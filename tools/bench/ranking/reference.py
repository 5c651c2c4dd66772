"""A numpy reference of the ranking metrics, for the bench's glue test (metrics.slow.test.mjs).

Written from Microsoft Recommenders' python_evaluation formulas, not from @ms/rank's code: per
user with at least one relevant (test) item, over the first k of the list,
  precision = hits / k, recall = hits / |relevant|,
  nDCG = sum over hit ranks r of 1 / log(1 + r), divided by the same sum over ranks 1..min(k, |relevant|),
  MAP (their map_at_k) = sum over hit ranks r of (hits up to r) / r, divided by min(k, |relevant|),
  hit rate = 1 when hits > 0;
each averaged over those users; coverage = distinct listed items / training items; popularity bias
= mean training count of the listed items (every position).

Usage: python reference.py TRAIN_CSV TEST_CSV LISTS_JSON NAME K   (LISTS_JSON as peers.py writes)
Prints {"ndcg": ..., "precision": ..., "recall": ..., "map": ..., "hitRate": ..., "coverage": ...,
"popularityBias": ..., "users": n}.
"""

import json
import sys

import numpy as np
import pandas as pd

train_path, test_path, lists_path, name, k = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
lists = json.load(open(lists_path))[name]
counts = train.movieId.value_counts()
relevant = test.groupby("userId").movieId.apply(set)

per_user = []
listed = []
for user, items in zip(lists["users"], lists["items"]):
    rel = relevant.get(user, set())
    if not rel:
        continue
    top = np.array(items[:k], dtype=np.int64)
    listed.extend(top.tolist())
    hit = np.array([i in rel for i in top], dtype=float)
    ranks = np.arange(1, len(top) + 1)
    best = min(k, len(rel))
    dcg = np.sum(hit / np.log1p(ranks))
    idcg = np.sum(1 / np.log1p(np.arange(1, best + 1)))
    ap = np.sum(np.cumsum(hit) / ranks * hit) / best
    per_user.append([hit.sum() / k, hit.sum() / len(rel), dcg / idcg, ap, float(hit.sum() > 0)])

m = np.array(per_user).mean(axis=0)
print(
    json.dumps(
        {
            "precision": m[0],
            "recall": m[1],
            "ndcg": m[2],
            "map": m[3],
            "hitRate": m[4],
            "coverage": len(set(listed)) / train.movieId.nunique(),
            "popularityBias": float(np.mean([counts[i] for i in listed])),
            "users": len(per_user),
        }
    )
)
