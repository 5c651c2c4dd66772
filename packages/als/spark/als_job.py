"""The als step's Spark engine: a PySpark application that spark-submit runs on any master.

Invoked by @ms/als (src/spark/spark.ts) as

    spark-submit [...] als_job.py fit   '<json config>'
    spark-submit --master local[1] als_job.py split '<json config>'
    spark-submit --master local[1] als_job.py copy  '<json config>'

`fit` reads our ratings Parquet (userId INT32, movieId INT32, rating FLOAT, and etl's split_key
FLOAT for split=time|file), computes OUR train/test split (hash and kfold from the splitHash of
@ms/contracts, as Spark SQL integer expressions: no Python UDF, so it runs in the JVM on every
executor; time and file from split_key), fits pyspark.ml's ALS with the step's parameters,
scores train and test (split=file's cold test rows by the
cold-start rule of @ms/contracts, as the local engine does), and writes user_factors/ and item_factors/ (one Parquet part file each,
`id` INT32 + `features` LIST<FLOAT>, ids ascending) and metrics.json under the run directory.
`split` writes the split side of every row (for the test that compares it with splitMask);
`copy` copies a file or directory between Hadoop file systems (staging on hdfs://, s3a://,
dbfs:/ ...), through the same Spark/Hadoop configuration the fit uses.

Protocol with the TypeScript side: one JSON object per line on stdout, each with an "ms" field
(started, progress, result, error); Spark's own logging goes to stderr. spark-submit's
PythonRunner merges this process's stderr into its stdout, so a traceback that escapes `main`
arrives there too, and the TypeScript side shows its last lines.
"""

import json
import sys
import threading
import time
import traceback

M32 = 0xFFFFFFFF


class BadInput(Exception):
    """The ratings are unusable (the TS side maps it to BadInputError, exit 3)."""


def emit(line, /, **fields):
    # Positional-only: the error line has a field named "kind" of its own.
    fields["ms"] = line
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


# --- splitHash (packages/contracts/src/split.ts), first in Python for the per-seed constant -------


def imul32(a, b):
    return (a * b) & M32


def fmix32_py(h):
    h &= M32
    h ^= h >> 16
    h = imul32(h, 0x85EBCA6B)
    h ^= h >> 13
    h = imul32(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def seed_word(seed):
    # JS: fmix32(Math.imul(seed | 0, 0x9e3779b1) ^ 0x5bd1e995); `seed | 0` keeps the low 32 bits.
    return fmix32_py(imul32(seed & M32, 0x9E3779B1) ^ 0x5BD1E995)


# --- the same in Spark SQL, on BIGINT columns holding unsigned 32-bit words ----------------------
# Products are split in 16-bit halves so no intermediate exceeds 2^49 (Spark 4 runs in ANSI mode,
# where a BIGINT overflow is an error, and 2^32 * 2^32 would overflow).


def imul_col(F, h, c):
    hi = F.shiftright(h, 16)
    lo = h.bitwiseAND(F.lit(0xFFFF))
    return (F.shiftleft((hi * F.lit(c)).bitwiseAND(F.lit(0xFFFF)), 16) + lo * F.lit(c)).bitwiseAND(F.lit(M32))


def with_split(df, split):
    """Adds `_train` (boolean): the side of each rating under `split` ({kind, seed, splitProp, folds,
    fold}), exactly as splitMaskOf of @ms/contracts computes it.

    hash: splitHash(userId, movieId, seed) < splitProp. kfold: with the same 32-bit hash word h,
    fold = floor(h * folds / 2^32) + 1 (h * folds < 2^37: exact in BIGINT), test iff fold == `fold`.
    time and file: etl's `split_key` column (FLOAT) < splitProp, compared as doubles as in TS.
    Each step of the hash is its own column so the expression tree stays linear (a nested Column
    would repeat `h` at every level); Spark's optimiser does not collapse projections that would duplicate them.
    """
    from pyspark.sql import functions as F

    kind = split.get("kind") or "hash"
    split_prop = float(split["splitProp"])
    if kind in ("time", "file"):
        if "split_key" not in df.columns:
            raise BadInput("split=%s needs the ratings' split_key column, which etl writes only with -P split=%s; rerun etl with it" % (kind, kind))
        return df.withColumn("_train", F.col("split_key").cast("double") < F.lit(split_prop))
    if kind not in ("hash", "kfold"):
        raise BadInput("unknown split kind %r" % kind)

    word = lambda name: F.col(name).cast("bigint").bitwiseAND(F.lit(M32))  # noqa: E731  (x | 0 as unsigned)

    def fmix(frame, col):
        h = F.col(col)
        frame = frame.withColumn(col, h.bitwiseXOR(F.shiftright(h, 16)))
        frame = frame.withColumn(col, imul_col(F, F.col(col), 0x85EBCA6B))
        frame = frame.withColumn(col, F.col(col).bitwiseXOR(F.shiftright(F.col(col), 13)))
        frame = frame.withColumn(col, imul_col(F, F.col(col), 0xC2B2AE35))
        return frame.withColumn(col, F.col(col).bitwiseXOR(F.shiftright(F.col(col), 16)))

    df = df.withColumn("_h", word("userId").bitwiseXOR(F.lit(seed_word(int(split["seed"])))))
    df = fmix(df, "_h")
    df = df.withColumn("_m", imul_col(F, word("movieId"), 0xCC9E2D51))
    df = df.withColumn("_h", F.col("_h").bitwiseXOR(F.col("_m")))
    df = fmix(df, "_h")
    if kind == "kfold":
        fold = F.shiftright(F.col("_h") * F.lit(int(split["folds"])), 32) + F.lit(1)
        return df.withColumn("_train", fold != F.lit(int(split["fold"]))).drop("_h", "_m")
    # h / 2^32 < p  <=>  h < p * 2^32: both sides are exact doubles (power-of-two scaling).
    return df.withColumn("_train", F.col("_h").cast("double") < F.lit(split_prop * 4294967296.0)).drop("_h", "_m")


def cold_start_sse(train, cold):
    """Sum of squared errors of the `cold` rows under @ms/contracts' ColdStartRule fitted on `train`:
    mu + b_m + b_u clamped to [0.5, 5], b_m = sum_{r in m} (r - mu) / (25 + n_m),
    b_u = sum_{r in u} (r - mu - b_m) / (10 + n_u); an unseen side's bias is 0. All in double."""
    from pyspark.sql import functions as F

    r = F.col("rating").cast("double")
    mu = train.agg(F.avg(r).alias("mu")).first()["mu"] or 0.0
    movie = train.groupBy("movieId").agg((F.sum(r - F.lit(mu)) / (F.lit(25.0) + F.count(F.lit(1)))).alias("_bm"))
    user = (
        train.join(movie, "movieId", "left")
        .groupBy("userId")
        .agg((F.sum(r - F.lit(mu) - F.coalesce(F.col("_bm"), F.lit(0.0))) / (F.lit(10.0) + F.count(F.lit(1)))).alias("_bu"))
    )
    pred = F.lit(mu) + F.coalesce(F.col("_bm"), F.lit(0.0)) + F.coalesce(F.col("_bu"), F.lit(0.0))
    pred = F.least(F.lit(5.0), F.greatest(F.lit(0.5), pred))
    row = cold.join(movie, "movieId", "left").join(user, "userId", "left").agg(F.sum((pred - r) ** 2).alias("sse")).first()
    return float(row["sse"] or 0.0)


def split_of(cfg):
    """The fit's split spec; configs from before the protocols carry only seed and splitProp (hash)."""
    split = cfg.get("split") or {}
    return dict(kind=split.get("kind", "hash"), seed=split.get("seed", cfg["seed"]), splitProp=split.get("splitProp", cfg["splitProp"]), folds=split.get("folds"), fold=split.get("fold"))


# --- progress ------------------------------------------------------------------------------------


class Progress(threading.Thread):
    """Polls the status tracker and prints job/stage progress when it changes (at most once a second)."""

    def __init__(self, sc):
        super().__init__(daemon=True)
        self.sc = sc
        self.phase = "start"
        self.stopped = threading.Event()
        self.max_executors = 0

    def run(self):
        last = None
        tracker = self.sc.statusTracker()
        while not self.stopped.wait(1.0):
            try:
                # Executors other than the driver (local masters have none): how many the application got at most.
                infos = self.sc._jsc.sc().statusTracker().getExecutorInfos()
                self.max_executors = max(self.max_executors, len(infos) - 1)
                jobs = tracker.getActiveJobsIds()
                stages = []
                for sid in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(sid)
                    if info is not None:
                        stages.append((sid, info))
                if not stages:
                    continue
                sid, info = max(stages, key=lambda s: s[0])
                job = max(jobs) if jobs else None
                job_stages = None
                if job is not None:
                    ji = tracker.getJobInfo(job)
                    job_stages = len(ji.stageIds) if ji is not None else None
                line = dict(
                    phase=self.phase,
                    job=job,
                    stage=sid,
                    stageName=info.name,
                    tasks=info.numTasks,
                    done=info.numCompletedTasks,
                    active=info.numActiveTasks,
                    failed=info.numFailedTasks,
                    jobStages=job_stages,
                )
                if line != last:
                    emit("progress", **line)
                    last = line
            except Exception:  # the context is stopping; progress is best effort
                pass


# --- subcommands ---------------------------------------------------------------------------------


def hadoop_fs(spark, uri):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def cmd_copy(spark, cfg):
    """Copies cfg.src to cfg.dst (file or directory) unless cfg.dst already exists: content-addressed targets."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    src, sfs = hadoop_fs(spark, cfg["src"])
    dst, dfs = hadoop_fs(spark, cfg["dst"])
    if cfg.get("reuse") and dfs.exists(dst):
        emit("result", copied=False)
        return
    tmp = jvm.org.apache.hadoop.fs.Path(cfg["dst"] + ".tmp-" + str(int(time.time() * 1000)))
    if not jvm.org.apache.hadoop.fs.FileUtil.copy(sfs, src, dfs, tmp, False, True, conf):
        raise RuntimeError("copy %s -> %s failed" % (cfg["src"], cfg["dst"]))
    if dfs.exists(dst):
        dfs.delete(dst, True)
    if not dfs.rename(tmp, dst):
        raise RuntimeError("rename %s -> %s failed" % (tmp.toString(), cfg["dst"]))
    if cfg.get("delete"):
        sfs.delete(src, True)
    emit("result", copied=True)


def cmd_split(spark, cfg, quiet=False):
    """Writes userId, movieId and one boolean column train_<i> per case: a [seed, splitProp] pair (hash) or a split spec."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(cfg["ratings"])
    cols = [F.col("userId"), F.col("movieId")]
    for i, case in enumerate(cfg["cases"]):
        split = case if isinstance(case, dict) else dict(kind="hash", seed=case[0], splitProp=case[1])
        df = with_split(df, split).withColumnRenamed("_train", "train_%d" % i)
        cols.append(F.col("train_%d" % i))
    df.select(*cols).coalesce(1).write.mode("overwrite").parquet(cfg["out"])
    if not quiet:
        emit("result", rows=spark.read.parquet(cfg["out"]).count())


def cmd_fit(spark, cfg, progress):
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    started = time.time()
    sc = spark.sparkContext
    out = cfg["out"].rstrip("/")
    if cfg.get("splitCheck"):  # tests: the split check rides on this application instead of starting its own
        cmd_split(spark, cfg["splitCheck"], quiet=True)
    sc.setCheckpointDir(out + "/checkpoints")
    spec = split_of(cfg)
    raw = spark.read.parquet(cfg["ratings"])
    keyed = ["split_key"] if spec["kind"] in ("time", "file") and "split_key" in raw.columns else []
    ratings = raw.select(
        F.col("userId").cast("int").alias("userId"), F.col("movieId").cast("int").alias("movieId"), F.col("rating").cast("float").alias("rating"), *keyed
    )
    split = with_split(ratings, spec).drop(*keyed).persist()
    bad = split.filter(F.col("userId").isNull() | F.col("movieId").isNull() | F.col("rating").isNull() | F.isnan("rating") | (F.abs("rating") == float("inf")))
    first = bad.first()
    if first is not None:
        raise BadInput("%d ratings are null or not finite (first: userId %s, movieId %s, rating %s); ratings must be finite numbers" % (bad.count(), first["userId"], first["movieId"], first["rating"]))
    train = split.filter(F.col("_train")).drop("_train")
    test = split.filter(~F.col("_train")).drop("_train")
    progress.phase = "fit"
    fit_started = time.time()
    als = ALS(
        rank=int(cfg["rank"]),
        maxIter=int(cfg["maxIter"]),
        regParam=float(cfg["regParam"]),
        seed=int(cfg["seed"]),
        nonnegative=bool(cfg["nonnegative"]),
        coldStartStrategy="nan",  # scored below by our own rules (cold rows counted, then dropped or NaN)
        implicitPrefs=False,
        # Each iteration lengthens the RDD lineage that every task carries; deserialising a long
        # one overflows an executor's stack (SPARK-1006). Checkpoints to the staging directory cut
        # it; they change no value.
        checkpointInterval=int(cfg.get("checkpointInterval", 3)),
        userCol="userId",
        itemCol="movieId",
        ratingCol="rating",
    )
    if cfg.get("numBlocks"):
        als = als.setNumBlocks(int(cfg["numBlocks"]))
    model = als.fit(train)
    users = model.userFactors.persist()
    items = model.itemFactors.persist()
    n_users = users.count()
    n_items = items.count()
    fit_seconds = time.time() - fit_started
    lam = float(cfg["regParam"])

    progress.phase = "score"
    # One pass scores both sides and sums the regularisation term: a training row contributes
    # |x_u|^2 + |y_i|^2, so the sum over training rows is sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2.
    # Predictions are x.y in double from the float factors, as the local engine computes them.
    dot = lambda a, b: F.aggregate(F.zip_with(a, b, lambda x, y: x.cast("double") * y.cast("double")), F.lit(0.0).cast("double"), lambda acc, v: acc + v)  # noqa: E731
    uf = users.select(F.col("id").alias("userId"), F.col("features").alias("_uf"))
    vf = items.select(F.col("id").alias("movieId"), F.col("features").alias("_vf"))
    scored = (
        split.join(uf, "userId", "left")
        .join(vf, "movieId", "left")
        .withColumn("_cold", F.col("_uf").isNull() | F.col("_vf").isNull())
        .withColumn("_err2", F.when(~F.col("_cold"), (dot(F.col("_uf"), F.col("_vf")) - F.col("rating").cast("double")) ** 2))
        .withColumn("_pen", F.when(~F.col("_cold"), dot(F.col("_uf"), F.col("_uf")) + dot(F.col("_vf"), F.col("_vf"))))
    )
    stats = {
        bool(r["_train"]): r
        for r in scored.groupBy("_train")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col("_cold").cast("long")).alias("cold"), F.sum("_err2").alias("sse"), F.sum("_pen").alias("pen"))
        .collect()
    }

    def side(train):
        r = stats.get(train)
        if r is None:
            return 0, 0, float("nan"), 0.0, 0.0
        rows, cold = int(r["rows"]), int(r["cold"] or 0)
        sse = float(r["sse"] or 0.0)
        return rows, cold, (sse / (rows - cold) if rows > cold else float("nan")), sse, float(r["pen"] or 0.0)

    train_rows, _, train_mse, train_sse, penalty = side(True)
    test_rows, test_cold, test_mse_scored, _, _ = side(False)
    # The ALS-WR objective per training rating, as the local engine reports it.
    train_loss = (train_sse + lam * penalty) / train_rows if train_rows else float("nan")

    progress.phase = "write"
    for name, frame in (("user_factors", users), ("item_factors", items)):
        frame.select(F.col("id").cast("int").alias("id"), F.col("features").cast("array<float>").alias("features")).orderBy("id").coalesce(1).write.mode(
            "overwrite"
        ).option("compression", "zstd").parquet(out + "/" + name)

    nan_by_choice = cfg["coldStartStrategy"] == "nan" and test_cold > 0
    test_mse = float("nan") if nan_by_choice else test_mse_scored
    if not nan_by_choice and spec["kind"] == "file" and test_cold > 0:
        # split=file never drops a test row: the cold ones are scored by the cold-start rule,
        # mse = (sse_warm + sse_cold) / (warm + cold), as the local engine reports it.
        cold = scored.filter(~F.col("_train") & F.col("_cold")).select("userId", "movieId", "rating")
        sse_cold = cold_start_sse(split.filter(F.col("_train")).select("userId", "movieId", "rating"), cold)
        warm = test_rows - test_cold
        test_mse = ((test_mse_scored * warm if warm > 0 else 0.0) + sse_cold) / test_rows
    metrics = dict(
        training_nrows=train_rows,
        test_nrows=test_rows,
        test_cold_start_nrows=test_cold,
        train_mse=train_mse,
        test_mse=test_mse,
        train_rmse=train_mse**0.5,
        test_rmse=test_mse**0.5 if test_mse == test_mse else float("nan"),
        train_loss=train_loss,
        fit_seconds=fit_seconds,
        spark_seconds=time.time() - started,
    )
    result = dict(
        metrics={k: (None if v != v else v) for k, v in metrics.items()},
        users=n_users,
        items=n_items,
        maxExecutors=progress.max_executors,
        applicationId=sc.applicationId,
        sparkVersion=spark.version,
        executors=executor_hosts(sc),
    )
    # Written where the factors are too, so a run whose stdout is not ours (cluster deploy mode) still reports.
    write_text(spark, out + "/metrics.json", json.dumps(result))
    emit("result", **result)


def executor_hosts(sc):
    try:
        status = sc._jsc.sc().getExecutorMemoryStatus()
        keys = sc._jvm.scala.collection.JavaConverters.setAsJavaSetConverter(status.keySet()).asJava()
        return sorted(str(k) for k in keys)
    except Exception:
        return []


def write_text(spark, uri, text):
    path, fs = hadoop_fs(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def main(argv):
    if len(argv) != 3 or argv[1] not in ("fit", "split", "copy"):
        sys.stderr.write("usage: als_job.py fit|split|copy '<json config>'\n")
        return 2
    cfg = json.loads(argv[2])
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(cfg.get("appName", "ms-als")).getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel(cfg.get("logLevel", "WARN"))
    if spark.conf.get("spark.sql.shuffle.partitions") == "200" and "spark.sql.shuffle.partitions" not in dict(sc.getConf().getAll()):
        # Spark's default of 200 shuffle partitions is hundreds of empty tasks on small data; scale with the cores instead.
        spark.conf.set("spark.sql.shuffle.partitions", str(max(4, 2 * sc.defaultParallelism)))
    emit("started", applicationId=sc.applicationId, master=sc.master, sparkVersion=spark.version)
    progress = Progress(sc)
    progress.start()
    try:
        if argv[1] == "fit":
            cmd_fit(spark, cfg, progress)
        elif argv[1] == "split":
            cmd_split(spark, cfg)
        else:
            cmd_copy(spark, cfg)
        return 0
    except Exception as error:  # Spark's own message (Py4J carries the JVM's) for the TS side's error
        text = str(error)
        java = getattr(error, "java_exception", None)
        if java is not None:
            text = java.toString()
        # Spark's message, without the JVM stack frames that follow it.
        text = "\n".join([line for line in text.splitlines() if not line.lstrip().startswith("at ")][:30])
        kind = "bad_input" if isinstance(error, BadInput) else "failed"
        emit("error", kind=kind, file=cfg.get("ratings"), type=type(error).__name__, message=text[:4000], traceback=traceback.format_exc()[-4000:])
        return 1
    finally:
        progress.stopped.set()
        spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
