"""Spark's view of ms artifacts, for the interop tests: one session for every check.

Usage: python spark_interop.py RATINGS_PARQUET FACTORS_DIR PAIRS_JSON WORK_DIR
PAIRS_JSON: {"userIds": [...], "movieIds": [...]}. Prints one JSON document:
  ratings / user_factors / item_factors: Spark's schema (simpleString and per-field nullability),
    row count, and sums of each numeric column (so values are checked, not just shapes);
  sql: predictions from a join of the pairs with both factor tables and a dot product in Spark SQL;
  model: predictions of a real ALSModel whose factor tables are our files: Spark writes a model of
    the same rank (fitted on a 4-rating toy set, only for its metadata), our Parquet files replace
    its factor tables, and ALSModel.load + transform (coldStartStrategy "nan") score the pairs.
NaN predictions are written as null.
"""
import glob
import json
import math
import os
import shutil
import sys

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

ratings_path, factors_dir, pairs_path, work = sys.argv[1:5]
spark = (SparkSession.builder.master("local[2]").appName("ms-interop")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")


def describe(df, numeric):
    sums = df.agg(*[F.sum(F.col(c).cast("double")).alias(c) for c in numeric]).first().asDict() if numeric else {}
    return {
        "schema": df.schema.simpleString(),
        "nullable": {f.name: f.nullable for f in df.schema.fields},
        "rows": df.count(),
        "sums": sums,
    }


ratings = spark.read.parquet(ratings_path)
users = spark.read.parquet(os.path.join(factors_dir, "user_factors.parquet"))
items = spark.read.parquet(os.path.join(factors_dir, "item_factors.parquet"))
flat = lambda df: df.select("id", F.explode("features").alias("f"))  # noqa: E731
result = {
    "spark": spark.version,
    "ratings": describe(ratings, ["userId", "movieId", "rating"]),
    "user_factors": {**describe(users, ["id"]), "feature_sum": flat(users).agg(F.sum(F.col("f").cast("double"))).first()[0]},
    "item_factors": {**describe(items, ["id"]), "feature_sum": flat(items).agg(F.sum(F.col("f").cast("double"))).first()[0]},
}

with open(pairs_path) as fh:
    pairs = json.load(fh)
rows = [(i, int(u), int(m)) for i, (u, m) in enumerate(zip(pairs["userIds"], pairs["movieIds"]))]
pairs_df = spark.createDataFrame(rows, "i int, userId int, movieId int")


def clean(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


u = users.select(F.col("id").alias("userId"), F.col("features").alias("uf"))
m = items.select(F.col("id").alias("movieId"), F.col("features").alias("mf"))
dot = F.expr("aggregate(zip_with(uf, mf, (a, b) -> cast(a as double) * cast(b as double)), 0D, (acc, x) -> acc + x)")
sql = pairs_df.join(u, "userId", "left").join(m, "movieId", "left").select("i", dot.alias("p")).collect()
by_i = {r["i"]: clean(r["p"]) for r in sql}
result["sql"] = [by_i[i] for i in range(len(rows))]

rank = len(users.first()["features"])
model_dir = os.path.join(work, "als-model")
toy = spark.createDataFrame([(1, 1, 4.0), (1, 2, 3.0), (2, 1, 5.0), (2, 2, 2.0)], "userId int, movieId int, rating float")
ALS(rank=rank, maxIter=1, userCol="userId", itemCol="movieId", ratingCol="rating", seed=1).fit(toy).write().overwrite().save(model_dir)
for table, ours in (("userFactors", "user_factors.parquet"), ("itemFactors", "item_factors.parquet")):
    for part in glob.glob(os.path.join(model_dir, table, "part-*")):
        os.remove(part)
    shutil.copyfile(os.path.join(factors_dir, ours), os.path.join(model_dir, table, "part-00000-ms.parquet"))
model = ALSModel.load(model_dir).setColdStartStrategy("nan")
scored = model.transform(pairs_df).select("i", "prediction").collect()
by_i = {r["i"]: clean(r["prediction"]) for r in scored}
result["model"] = {"rank": model.rank, "predictions": [by_i[i] for i in range(len(rows))]}

print(json.dumps(result))
spark.stop()
