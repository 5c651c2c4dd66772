"""Spark MLlib side of the ALS comparison: fit ALS on train.parquet, score test.parquet.

Usage: spark-submit --master local[2] spark_als.py TRAIN_PARQUET TEST_PARQUET RANK MAX_ITER REG SEED
Prints one JSON line on stdout: session start, fit and scoring seconds, test/train RMSE, row counts.
"""
import json
import sys
import time

t0 = time.perf_counter()
from pyspark.ml.evaluation import RegressionEvaluator  # noqa: E402
from pyspark.ml.recommendation import ALS  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

train_path, test_path = sys.argv[1], sys.argv[2]
rank, max_iter, reg, seed = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
spark = SparkSession.builder.appName("ms-compare-als").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
t1 = time.perf_counter()
train = spark.read.parquet(train_path).cache()
test = spark.read.parquet(test_path).cache()
train_rows, test_rows = train.count(), test.count()
t2 = time.perf_counter()
als = ALS(rank=rank, maxIter=max_iter, regParam=reg, seed=seed, coldStartStrategy="drop",
          userCol="userId", itemCol="movieId", ratingCol="rating", nonnegative=False, implicitPrefs=False)
model = als.fit(train)
t3 = time.perf_counter()
evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating", predictionCol="prediction")
scored = model.transform(test).cache()
test_rmse = evaluator.evaluate(scored)
scored_rows = scored.count()
t4 = time.perf_counter()
train_rmse = evaluator.evaluate(model.transform(train))
print(json.dumps({
    "spark": spark.version,
    "session_seconds": t1 - t0,
    "read_seconds": t2 - t1,
    "fit_seconds": t3 - t2,
    "score_seconds": t4 - t3,
    "train_rows": train_rows,
    "test_rows": test_rows,
    "test_scored_rows": scored_rows,
    "test_rmse": test_rmse,
    "train_rmse": train_rmse,
}))
spark.stop()
