"""PySpark side of the ETL comparison: read a MovieLens ratings CSV and write it as zstd Parquet.

Usage: spark-submit --master local[2] spark_etl.py RATINGS_CSV OUT_DIR
Prints one JSON line on stdout: session start, read+write seconds, rows, Spark version.
"""
import json
import sys
import time

t0 = time.perf_counter()
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql.types import FloatType, IntegerType, LongType, StructField, StructType  # noqa: E402

csv, out = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("ms-compare-etl").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
t1 = time.perf_counter()
# An explicit schema, as a user who knows the file would write (inferSchema costs a second pass).
schema = StructType([
    StructField("userId", IntegerType(), False),
    StructField("movieId", IntegerType(), False),
    StructField("rating", FloatType(), False),
    StructField("timestamp", LongType(), False),
])
df = spark.read.csv(csv, header=True, schema=schema).select("userId", "movieId", "rating")
df.write.mode("overwrite").option("compression", "zstd").parquet(out)
t2 = time.perf_counter()
rows = spark.read.parquet(out).count()
print(json.dumps({
    "spark": spark.version,
    "session_seconds": t1 - t0,
    "etl_seconds": t2 - t1,
    "rows": rows,
}))
spark.stop()
