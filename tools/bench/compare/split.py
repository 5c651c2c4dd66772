"""Writes train.parquet and test.parquet from a ratings Parquet file and a split mask.

The mask is our split (splitMask from @ms/contracts, one byte per rating in file order, 1 = train),
written by bench.mjs, so Spark trains and scores on exactly the rows ms-als uses.
Usage: python split.py RATINGS_PARQUET MASK_BIN OUT_DIR
"""
import json
import sys

import numpy as np
import pyarrow.parquet as pq

ratings, mask_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
table = pq.read_table(ratings, columns=["userId", "movieId", "rating"])
mask = np.fromfile(mask_path, dtype=np.uint8).astype(bool)
if len(mask) != table.num_rows:
    sys.exit(f"{mask_path}: {len(mask)} mask bytes for {table.num_rows} ratings in {ratings}")
train, test = table.filter(mask), table.filter(~mask)
pq.write_table(train, f"{out}/train.parquet", compression="zstd")
pq.write_table(test, f"{out}/test.parquet", compression="zstd")
print(json.dumps({"train_rows": train.num_rows, "test_rows": test.num_rows}))
