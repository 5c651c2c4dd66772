#!/usr/bin/env node
/**
 * The comparison benchmark: our steps against the tools a user would otherwise pick, on the same
 * data, on the same machine, in the same run.
 *
 *   ETL    whole `ms-etl` process vs PySpark (spark-submit, local[2], CSV -> zstd Parquet) vs a bare
 *          DuckDB COPY (tools/bench/etl/bare-copy.mjs). Targets: >= 10x Spark, <= 1.15x bare DuckDB.
 *   ALS    whole `ms-als` process vs Spark MLlib ALS (spark-submit, local[2]), same rank, maxIter,
 *          regParam, seed, coldStartStrategy drop. Both see our split: Spark fits train.parquet and
 *          scores test.parquet, written from our splitMask; ms-als computes the identical split from
 *          the same seed/split_prop (the training row counts are checked equal). Target: >= 5x
 *          Spark at test RMSE <= Spark's + 0.002.
 *   Keras  ms-keras vs Python Keras on TensorFlow CPU: same network, batch size, epochs, learning
 *          rate, validation tail and features (`--features factors`: movie then user factors from
 *          our ALS factors of ml-latest-small, exported once to .npy). samples/s and test RMSE.
 *          Target: >= 1.5x TF's samples/s at equal test RMSE (within 0.005; a few seeds only size the
 *          shuffle noise; keras/parity.mjs gives the verdict: unshuffled, and 3 x 6 seeds). ms-keras also runs
 *          with `--backend wasm` (the tfjs reference path) for the record.
 *
 * Usage (after `pnpm build`):  node tools/bench/compare/bench.mjs
 * Environment:
 *   MS_COMPARE_ONLY=etl,als,keras      parts to run (default all; keras alone fits its factors with
 *                                      ms-als, without the Spark rounds)
 *   MS_COMPARE_ETL_ROWS=20000000       synthetic CSV rows for the ETL part
 *   MS_COMPARE_ALS_ROWS=20000000       synthetic ratings for the ml-20m-shaped ALS case (138,000 users,
 *                                      27,000 movies); 0 skips it
 *   MS_COMPARE_ROUNDS=3                rounds of the synthetic ETL and ALS measurements (ml-latest-small: 3)
 *   MS_COMPARE_KERAS_EPOCHS=10, MS_COMPARE_KERAS_BATCH=128,1024, MS_COMPARE_KERAS_LR=0.001,
 *   MS_COMPARE_KERAS_SEEDS=42,43,44    one ms-keras and one Keras run per seed (RMSEs averaged)
 *   MS_SPARK_DRIVER_MEMORY=8g          spark-submit --driver-memory (local mode: the executor too)
 * Python comes from tools/python/ensure-venv.sh (spark) and `ensure-venv.sh keras` (TensorFlow).
 */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { splitMask } from "@ms/contracts";
import { etl, readRatingsColumns, writeSyntheticRatings, resolveEtlParams } from "@ms/etl";
import { readFactors } from "@ms/als";
import { buildNetwork, FeatureAssembler, joinRatings, loadTf } from "@ms/keras";
import { DuckDBInstance } from "@duckdb/node-api";
import { ROOT, WORK, ML_SMALL, median, table, machine, gitCommit, writeResult, existsSync, path, fmt, writeNpy } from "../lib.mjs";
import { runTree, lastJson } from "./tree.mjs";
import { writeFeatureNpys } from "../keras/npy-features.mjs";

const here = path.dirname(new URL(import.meta.url).pathname);
const work = path.join(WORK, "compare");
mkdirSync(work, { recursive: true });
const ETL_BIN = path.join(ROOT, "packages/etl/dist/bin.js");
const ALS_BIN = path.join(ROOT, "packages/als/dist/bin.js");
const KERAS_BIN = path.join(ROOT, "packages/keras/dist/bin.js");
const FM_BIN = path.join(ROOT, "packages/fm/dist/bin.js");
const BARE = path.join(ROOT, "tools/bench/etl/bare-copy.mjs");
for (const bin of [ETL_BIN, ALS_BIN, KERAS_BIN]) {
  if (!existsSync(bin)) {
    process.stderr.write(`${bin} is missing: run \`pnpm build\` first\n`);
    process.exit(2);
  }
}

const only = (process.env.MS_COMPARE_ONLY ?? "etl,als,keras").split(",");
const ETL_ROWS = Number(process.env.MS_COMPARE_ETL_ROWS ?? 20_000_000);
const ALS_ROWS = Number(process.env.MS_COMPARE_ALS_ROWS ?? 20_000_000);
const ROUNDS = Number(process.env.MS_COMPARE_ROUNDS ?? 3);
const SPARK_MEMORY = process.env.MS_SPARK_DRIVER_MEMORY ?? "8g";
const ALS = { rank: 12, maxIter: 10, regParam: 0.1, seed: 42, splitProp: 0.8 };
const KERAS = {
  epochs: Number(process.env.MS_COMPARE_KERAS_EPOCHS ?? 10),
  batches: (process.env.MS_COMPARE_KERAS_BATCH ?? "128,1024").split(",").map(Number),
  learningRate: Number(process.env.MS_COMPARE_KERAS_LR ?? 0.001),
  hiddenUnits: 20,
  validationSplit: 0.2,
  minDelta: 0.0001,
  seed: 42,
  seeds: (process.env.MS_COMPARE_KERAS_SEEDS ?? "42,43,44").split(",").map(Number),
};
const smallCsv = path.join(ML_SMALL, "ratings.csv");
const log = (msg) => process.stderr.write(`[compare] ${msg}\n`);

function ensureVenv(kind) {
  try {
    return execFileSync(path.join(ROOT, "tools/python/ensure-venv.sh"), [kind], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim();
  } catch (e) {
    log(`the ${kind} venv could not be built: ${e.message.split("\n")[0]}`);
    return undefined;
  }
}

const sparkVenv = only.includes("etl") || only.includes("als") || only.includes("keras") ? ensureVenv("spark") : undefined;
if (!sparkVenv) throw new Error("the Spark venv is needed (tools/python/ensure-venv.sh)");
const PY = path.join(sparkVenv, "bin/python");
const SPARK_SUBMIT = path.join(sparkVenv, "bin/spark-submit");
// Spark defaults would shuffle tiny data into 200 partitions and start a web UI: a user timing a
// local job would turn both off, so Spark is not charged for them.
const sparkArgs = [
  "--master",
  "local[2]",
  "--driver-memory",
  SPARK_MEMORY,
  "--conf",
  "spark.ui.enabled=false",
  "--conf",
  "spark.sql.shuffle.partitions=4",
];
const sparkEnv = { ...process.env, PYSPARK_PYTHON: PY, PYSPARK_DRIVER_PYTHON: PY };

const du = (p) => {
  const s = statSync(p);
  if (!s.isDirectory()) return s.size;
  return readdirSync(p).reduce((a, n) => a + du(path.join(p, n)), 0);
};

function versions() {
  const java = execFileSync("java", ["-version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const javaLine = (execFileSync("sh", ["-c", "java -version 2>&1"], { encoding: "utf8" }).split("\n")[0] ?? java).trim();
  const py = execFileSync(
    PY,
    ["-c", "import sys, pyspark, pyarrow; print(sys.version.split()[0], pyspark.__version__, pyarrow.__version__)"],
    { encoding: "utf8" },
  )
    .trim()
    .split(" ");
  return { java: javaLine, python: py[0], pyspark: py[1], pyarrow: py[2] };
}

async function duckdbVersion() {
  const conn = await (await DuckDBInstance.create(":memory:")).connect();
  const reader = await conn.runAndReadAll("SELECT version()");
  return String(reader.getRows()[0][0]);
}

// ---------------------------------------------------------------------------------------------- ETL

async function etlCase(label, csv, rounds) {
  const ours = [];
  const bare = [];
  const spark = [];
  let rows;
  let oursMiB;
  for (let i = 0; i < rounds; i++) {
    const bareOut = path.join(work, "bare.parquet");
    rmSync(bareOut, { force: true });
    bare.push(await runTree(process.execPath, [BARE, csv, bareOut]));
    const out = path.join(work, "etl-out");
    rmSync(out, { recursive: true, force: true });
    const r = await runTree(process.execPath, [
      ETL_BIN,
      "--ratings-csv",
      csv,
      "--out",
      out,
      "--max-row-limit",
      "-1",
      "--json",
      "--log-level",
      "warn",
    ]);
    const doc = JSON.parse(r.stdout);
    rows = doc.metrics.rows;
    oursMiB = du(path.join(out, "ratings.parquet")) / 2 ** 20;
    ours.push(r);
    const sparkOut = path.join(work, "spark-etl-out");
    rmSync(sparkOut, { recursive: true, force: true });
    const s = await runTree(SPARK_SUBMIT, [...sparkArgs, path.join(here, "spark_etl.py"), csv, sparkOut], { env: sparkEnv });
    const sdoc = lastJson(s.stdout);
    if (sdoc.rows !== rows) throw new Error(`Spark wrote ${sdoc.rows} rows, ms-etl ${rows}`);
    spark.push({ ...s, doc: sdoc, outMiB: du(sparkOut) / 2 ** 20 });
  }
  const oursS = median(ours.map((r) => r.seconds));
  const bareS = median(bare.map((r) => r.seconds));
  const sparkS = median(spark.map((r) => r.seconds));
  const sparkIn = median(spark.map((r) => r.doc.etl_seconds));
  return {
    label,
    rows,
    oursS,
    bareS,
    sparkS,
    sparkIn,
    vsSpark: sparkS / oursS,
    vsSparkIn: sparkIn / oursS,
    vsBare: oursS / bareS,
    oursMiB,
    sparkMiB: spark[0].outMiB,
    oursRss: Math.max(...ours.map((r) => r.peakMiB)),
    bareRss: Math.max(...bare.map((r) => r.peakMiB)),
    sparkRss: Math.max(...spark.map((r) => r.peakMiB)),
    spark: spark[0].doc.spark,
  };
}

async function runEtl() {
  const csv = path.join(WORK, `synthetic-${ETL_ROWS}.csv`); // shared with tools/bench/etl (same seed)
  if (!existsSync(csv)) {
    log(`generating ${fmt(ETL_ROWS)} synthetic ratings...`);
    writeSyntheticRatings(csv, { rows: ETL_ROWS, seed: 42 });
  }
  const results = [];
  log(`ETL on synthetic ${fmt(ETL_ROWS)}...`);
  results.push(await etlCase(`synthetic ${fmt(ETL_ROWS)}`, csv, ROUNDS));
  if (existsSync(smallCsv)) {
    log("ETL on ml-latest-small...");
    results.push(await etlCase("ml-latest-small", smallCsv, 3));
  } else log(`skipping ml-latest-small: ${smallCsv} not found (set MS_MOVIELENS_SMALL)`);
  const header = [
    "data",
    "rows",
    "ms-etl s",
    "bare DuckDB COPY s",
    "PySpark s (process)",
    "PySpark s (in session)",
    "Spark / ms-etl (target >= 10)",
    "Spark in-session / ms-etl",
    "ms-etl / DuckDB (target <= 1.15)",
    "Parquet MiB ours / Spark",
    "peak RSS MiB ms-etl / DuckDB / Spark",
  ];
  const body = results.map((r) => [
    r.label,
    r.rows,
    r.oursS,
    r.bareS,
    r.sparkS,
    r.sparkIn,
    r.vsSpark,
    r.vsSparkIn,
    r.vsBare,
    `${fmt(r.oursMiB)} / ${fmt(r.sparkMiB)}`,
    `${fmt(r.oursRss, 0)} / ${fmt(r.bareRss, 0)} / ${fmt(r.sparkRss, 0)}`,
  ]);
  return {
    md: [
      "## ETL: ratings CSV -> Parquet",
      "",
      `Whole processes timed (median of ${ROUNDS} round(s) on synthetic data, 3 on ml-latest-small, the three tools alternated). ` +
        'PySpark: `spark-submit --master local[2]` of spark_etl.py (explicit schema, zstd Parquet); "in session" is the read+write inside an already started session.',
      "",
      table(header, body),
      "",
      ...results.map(
        (r) =>
          `Targets on ${r.label}: Spark / ms-etl ${fmt(r.vsSpark)} (>= 10: ${r.vsSpark >= 10 ? "met" : "not met"}); ms-etl / bare DuckDB ${fmt(r.vsBare)} (<= 1.15: ${r.vsBare <= 1.15 ? "met" : "not met"}).  `,
      ),
    ].join("\n"),
    spark: results[0]?.spark,
  };
}

// ---------------------------------------------------------------------------------------------- ALS

async function alsData(name, shape) {
  const dir = path.join(work, name);
  if (existsSync(path.join(dir, "manifest.json"))) return dir;
  if (shape) {
    const csv = `${dir}.csv`;
    log(`generating ${name} (${fmt(shape.rows)} ratings, ${fmt(shape.users)} users, ${fmt(shape.movies)} movies)...`);
    writeSyntheticRatings(csv, { ...shape, seed: 42 });
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), dir);
    rmSync(csv);
  } else await etl({ ratingsCsv: smallCsv }, resolveEtlParams({ max_row_limit: -1 }), dir);
  return dir;
}

/** train.parquet / test.parquet from our split mask, written by pyarrow (split.py). */
async function writeSplit(ratingsDir) {
  const splitDir = `${ratingsDir}-split`;
  const cols = await readRatingsColumns(ratingsDir);
  const mask = splitMask(cols.userIds, cols.movieIds, ALS.seed, ALS.splitProp);
  mkdirSync(splitDir, { recursive: true });
  const maskFile = path.join(splitDir, "mask.bin");
  writeFileSync(maskFile, mask);
  const counts = JSON.parse(
    execFileSync(PY, [path.join(here, "split.py"), path.join(ratingsDir, "ratings.parquet"), maskFile, splitDir], { encoding: "utf8" }),
  );
  let train = 0;
  for (let i = 0; i < mask.length; i++) train += mask[i];
  if (counts.train_rows !== train) throw new Error(`split.py wrote ${counts.train_rows} training rows, the mask has ${train}`);
  return { splitDir, ...counts, rows: cols.rows };
}

/** ms-als's arguments for the compare grid's ALS settings (the ALS and Keras sections fit the same model). */
function alsArgs(ratingsDir, out) {
  const { rank, maxIter, regParam, seed, splitProp } = ALS;
  return [ALS_BIN, "--ratings", ratingsDir, "--out", out, "--json", "--als-rank", String(rank), "--als-max-iter", String(maxIter)]
    .concat(["--als-reg-param", String(regParam), "--seed", String(seed), "--split-prop", String(splitProp)])
    .concat(["--als-cold-start-strategy", "drop", "--log-level", "warn"]);
}

async function alsCase(label, ratingsDir, rounds) {
  log(`ALS on ${label}: writing the split...`);
  const split = await writeSplit(ratingsDir);
  const out = path.join(work, `als-out-${path.basename(ratingsDir)}`);
  const oursArgs = alsArgs(ratingsDir, out);
  const sparkScript = [
    ...sparkArgs,
    path.join(here, "spark_als.py"),
    path.join(split.splitDir, "train.parquet"),
    path.join(split.splitDir, "test.parquet"),
    String(ALS.rank),
    String(ALS.maxIter),
    String(ALS.regParam),
    String(ALS.seed),
  ];
  const ours = [];
  const spark = [];
  let m;
  let s;
  for (let i = 0; i < rounds; i++) {
    const o = await runTree(process.execPath, oursArgs);
    m = JSON.parse(o.stdout).metrics;
    if (m.training_nrows !== split.train_rows)
      throw new Error(`ms-als trained on ${m.training_nrows} rows, train.parquet holds ${split.train_rows}`);
    ours.push({ ...o, fit: m.fit_seconds });
    log(`ALS on ${label} (${i + 1}/${rounds}): ms-als ${fmt(o.seconds)} s, test RMSE ${m.test_rmse.toFixed(4)}; Spark MLlib...`);
    const r = await runTree(SPARK_SUBMIT, sparkScript, { env: sparkEnv });
    s = lastJson(r.stdout);
    if (s.train_rows !== split.train_rows) throw new Error(`Spark read ${s.train_rows} training rows, expected ${split.train_rows}`);
    spark.push({ ...r, fit: s.fit_seconds });
    log(
      `ALS on ${label} (${i + 1}/${rounds}): Spark ${fmt(r.seconds)} s (fit ${fmt(s.fit_seconds)} s), test RMSE ${s.test_rmse.toFixed(4)}`,
    );
  }
  const oursS = median(ours.map((r) => r.seconds));
  const sparkS = median(spark.map((r) => r.seconds));
  return {
    label,
    rounds,
    rows: split.rows,
    train: split.train_rows,
    test: `${fmt(m.test_nrows - (m.test_cold_start_nrows ?? 0))} / ${fmt(s.test_scored_rows)}`,
    oursS,
    oursFit: median(ours.map((r) => r.fit)),
    sparkS,
    sparkFit: median(spark.map((r) => r.fit)),
    ratio: sparkS / oursS,
    oursRmse: m.test_rmse,
    sparkRmse: s.test_rmse,
    rmseOk: m.test_rmse <= s.test_rmse + 0.002,
    oursTrainRmse: m.train_rmse,
    sparkTrainRmse: s.train_rmse,
    oursRss: Math.max(...ours.map((r) => r.peakMiB)),
    sparkRss: Math.max(...spark.map((r) => r.peakMiB)),
    out,
    ratingsDir,
    spark: s.spark,
  };
}

async function runAls() {
  const results = [];
  if (existsSync(smallCsv)) results.push(await alsCase("ml-latest-small", await alsData("ml-latest-small"), 3));
  if (ALS_ROWS > 0) {
    const shape = { rows: ALS_ROWS, users: Math.min(138_000, Math.max(100, Math.round(ALS_ROWS / 145))), movies: 27_000 };
    if (ALS_ROWS === 20_000_000) shape.users = 138_000;
    const label = `synthetic ${fmt(ALS_ROWS)} (${fmt(shape.users)} users, ${fmt(shape.movies)} movies)`;
    results.push(await alsCase(label, await alsData(`ml20m-shaped-${ALS_ROWS}`, shape), ROUNDS));
  }
  const header = [
    "data",
    "ratings",
    "train rows (both)",
    "test rows scored ours / Spark",
    "ms-als s (process)",
    "Spark s (process)",
    "Spark / ms-als (target >= 5)",
    "fit s ours / Spark",
    "test RMSE ours",
    "test RMSE Spark",
    "ours <= Spark + 0.002",
    "train RMSE ours / Spark",
    "peak RSS MiB ours / Spark tree",
  ];
  const body = results.map((r) => [
    r.label,
    r.rows,
    r.train,
    r.test,
    r.oursS,
    r.sparkS,
    r.ratio,
    `${fmt(r.oursFit)} / ${fmt(r.sparkFit)}`,
    r.oursRmse.toFixed(4),
    r.sparkRmse.toFixed(4),
    r.rmseOk ? "yes" : "NO",
    `${r.oursTrainRmse.toFixed(4)} / ${r.sparkTrainRmse.toFixed(4)}`,
    `${fmt(r.oursRss, 0)} / ${fmt(r.sparkRss, 0)}`,
  ]);
  return {
    md: [
      "## ALS: explicit ALS, rank 12, maxIter 10, regParam 0.1, seed 42, coldStartStrategy drop",
      "",
      `Medians of ${ROUNDS} round(s) on synthetic data, 3 on ml-latest-small, ms-als and Spark alternated. ` +
        "Both on our split (seed 42, split_prop 0.8): Spark fits train.parquet and scores test.parquet, written with our splitMask; " +
        "ms-als computes the same split from the full ratings (training row counts checked equal). Whole processes timed; " +
        "\"fit\" is the fitting alone (ms-als's fit_seconds; Spark's `ALS.fit`, after its input is cached). Spark: `spark-submit --master local[2]`, MLlib defaults otherwise (10 user/item blocks).",
      "",
      table(header, body),
      "",
      ...results.map(
        (r) =>
          `Targets on ${r.label}: Spark / ms-als ${fmt(r.ratio)} (>= 5: ${r.ratio >= 5 ? "met" : "not met"}); test RMSE ${r.oursRmse.toFixed(4)} vs Spark's ${r.sparkRmse.toFixed(4)} + 0.002 (${r.rmseOk ? "met" : "not met"}).  `,
      ),
    ].join("\n"),
    small: results.find((r) => r.label === "ml-latest-small"),
    spark: results[0]?.spark,
  };
}

// -------------------------------------------------------------------------------------------- Keras

/** Our features (movie factors then user factors) for the training and test rows, in file order. */
async function exportFeatures(ratingsDir, factorsDir, dir) {
  const factors = await readFactors(factorsDir);
  const ratings = await readRatingsColumns(ratingsDir);
  const joined = joinRatings(ratings, factors, { seed: factors.details.seed, splitProp: factors.details.splitProp });
  const assembler = new FeatureAssembler("factors", factors, joined);
  writeFeatureNpys(dir, assembler, { train: joined.trainRows, test: joined.testRows });
  return { train: joined.trainRows.length, test: joined.testRows.length, width: assembler.width };
}

/** Per-epoch samples/s as ms-keras logs them (fit rows / epoch seconds, validation included). */
function kerasRates(stderr) {
  const rates = [];
  let backend;
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const o = JSON.parse(line);
      if (typeof o.samplesPerSecond === "number") rates.push(o.samplesPerSecond);
      if (typeof o.backend === "string") backend = o.backend;
    } catch {
      // a line that is not a log record
    }
  }
  return { rates, backend };
}

/** The keras part's inputs without the ALS comparison (MS_COMPARE_ONLY=keras): ml-latest-small through ms-etl and ms-als alone. */
async function kerasInputs() {
  if (!existsSync(smallCsv)) return undefined;
  const ratingsDir = await alsData("ml-latest-small");
  const out = path.join(work, "als-out-for-keras");
  if (!existsSync(path.join(out, "manifest.json"))) {
    log("Keras: fitting ALS factors on ml-latest-small (ms-als)...");
    await runTree(process.execPath, alsArgs(ratingsDir, out));
  }
  return { ratingsDir, out };
}

const kerasInitDir = (seed) => path.join(work, `keras-init-${seed}`);
const mean = (xs) => xs.reduce((x, y) => x + y, 0) / xs.length;

/** ms-keras's initial weights for this network and each seed, so TensorFlow starts from the same point. */
async function writeKerasInitialWeights(width) {
  const { tf } = await loadTf("cpu");
  for (const seed of KERAS.seeds) {
    mkdirSync(kerasInitDir(seed), { recursive: true });
    const model = buildNetwork(tf, width, {
      hiddenUnits: KERAS.hiddenUnits,
      learningRate: KERAS.learningRate,
      seed,
      outputBias: 0,
    });
    model.getWeights().forEach((w, i) => writeNpy(path.join(kerasInitDir(seed), `w${i}.npy`), w.dataSync(), w.shape));
    model.dispose();
  }
}

/** An fm artifact without features (`--fm-model none`): ms-keras reads it as its features input; the seed's features need none. */
function noFeatures(small) {
  const dir = `${small.out}-fm-none`;
  if (!existsSync(path.join(dir, "manifest.json")))
    execFileSync(process.execPath, [FM_BIN, "--ratings", small.ratingsDir, "--factors", small.out, "--out", dir, "--fm-model", "none"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  return dir;
}

/** The ms-keras command line of one run. */
function kerasArgs(small, out, batch, seed) {
  return [
    KERAS_BIN,
    "--ratings",
    small.ratingsDir,
    "--factors",
    small.out,
    "--features",
    noFeatures(small),
    "--out",
    out,
    "--keras-features",
    "factors",
    "--keras-epochs",
    String(KERAS.epochs),
    "--keras-batch-size",
    String(batch),
    "--keras-learning-rate",
    String(KERAS.learningRate),
    "--keras-patience",
    String(KERAS.epochs),
    "--keras-min-delta",
    String(KERAS.minDelta),
    "--keras-validation-split",
    String(KERAS.validationSplit),
    "--keras-hidden-units",
    String(KERAS.hiddenUnits),
    "--keras-seed",
    String(seed),
    "--json",
    "--log-level",
    "info",
  ];
}

/** TensorFlow's run of one batch size and seed, from ms-keras's initial weights, on the exported features. */
async function runTensorFlow(tfVenv, featDir, batch, seed) {
  const py = await runTree(path.join(tfVenv, "bin/python"), [
    path.join(ROOT, "packages/keras/reference/keras_tf.py"),
    featDir,
    String(KERAS.epochs),
    String(batch),
    String(KERAS.learningRate),
    String(KERAS.epochs),
    String(KERAS.minDelta),
    String(KERAS.validationSplit),
    String(KERAS.hiddenUnits),
    String(seed),
    kerasInitDir(seed),
  ]);
  const t = lastJson(py.stdout);
  return {
    version: `TensorFlow ${t.tensorflow}, Keras ${t.keras}`,
    run: { rates: t.samples_per_second, rmse: t.test_rmse, seconds: py.seconds, rss: py.peakMiB, epochs: t.epochs_run },
  };
}

/** One batch size: a run per seed on each side, alternated, then the tfjs reference path; the table row. */
async function runKerasBatch(small, featDir, tfVenv, batch) {
  const out = path.join(work, `keras-out-${batch}`);
  let tfVersion;
  // One run per seed on each side, alternated; rates pooled over every epoch, RMSEs averaged over seeds
  // (with the seeds' shuffles differing, single runs of either side move by about 0.005).
  const ours = [];
  const theirs = [];
  for (const seed of KERAS.seeds) {
    log(`Keras batch ${batch}, seed ${seed}: ms-keras...`);
    rmSync(out, { recursive: true, force: true });
    const r = await runTree(process.execPath, kerasArgs(small, out, batch, seed));
    const doc = JSON.parse(r.stdout);
    ours.push({
      ...kerasRates(r.stderr),
      rmse: doc.metrics.test_rmse,
      seconds: r.seconds,
      rss: r.peakMiB,
      epochs: doc.metrics.epochs_run,
    });
    if (tfVenv) {
      log(`Keras batch ${batch}, seed ${seed}: TensorFlow...`);
      const t = await runTensorFlow(tfVenv, featDir, batch, seed);
      tfVersion = t.version;
      theirs.push(t.run);
    }
  }
  const row = {
    batch,
    oursRate: median(ours.flatMap((o) => o.rates)),
    oursRmse: mean(ours.map((o) => o.rmse)),
    oursSpread: ours.map((o) => o.rmse),
    oursS: median(ours.map((o) => o.seconds)),
    oursRss: Math.max(...ours.map((o) => o.rss)),
    epochs: ours[0].epochs,
    backend: ours[0].backend ?? "?",
  };
  if (theirs.length > 0)
    Object.assign(row, {
      tfRate: median(theirs.flatMap((t) => t.rates)),
      tfRmse: mean(theirs.map((t) => t.rmse)),
      tfSpread: theirs.map((t) => t.rmse),
      tfS: median(theirs.map((t) => t.seconds)),
      tfRss: Math.max(...theirs.map((t) => t.rss)),
      tfEpochs: theirs[0].epochs,
    });
  // The tfjs reference path (WASM backend) on the first seed's command, for the record.
  log(`Keras batch ${batch}: ms-keras --backend wasm...`);
  rmSync(out, { recursive: true, force: true });
  const ref = await runTree(process.execPath, [...kerasArgs(small, out, batch, KERAS.seeds[0]), "--backend", "wasm"]);
  Object.assign(row, { wasmRate: median(kerasRates(ref.stderr).rates), wasmRmse: JSON.parse(ref.stdout).metrics.test_rmse });
  return { row, tfVersion };
}

/** The Keras comparison's table, one row per batch size. */
function kerasTable(rows) {
  const header = [
    "batch",
    "epochs ours / TF",
    "ms-keras samples/s",
    "TF Keras samples/s",
    "ours / TF (target >= 1.5)",
    "test RMSE ours: mean (per seed)",
    "test RMSE TF: mean (per seed)",
    "ours - TF ± SE (3 seeds: noise; verdict in keras/parity.mjs)",
    "process s ours / TF",
    "peak RSS MiB ours / TF",
    "backend",
    "tfjs wasm path samples/s (RMSE)",
  ];
  const na = "n/a (TensorFlow not installed)";
  // Standard error of a mean over seeds: one run's RMSE moves by 0.005-0.01 with its shuffle alone.
  const se = (xs) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1) / xs.length);
  const body = rows.map((r) => [
    String(r.batch),
    `${r.epochs} / ${r.tfEpochs ?? "-"}`,
    Math.round(r.oursRate),
    r.tfRate ? Math.round(r.tfRate) : na,
    r.tfRate ? r.oursRate / r.tfRate : "-",
    `${r.oursRmse.toFixed(4)} (${r.oursSpread.map((x) => x.toFixed(4)).join(", ")})`,
    r.tfRmse === undefined ? na : `${r.tfRmse.toFixed(4)} (${r.tfSpread.map((x) => x.toFixed(4)).join(", ")})`,
    r.tfRmse === undefined
      ? "-"
      : `${(r.oursRmse - r.tfRmse).toFixed(4)} ± ${Math.sqrt(se(r.oursSpread) ** 2 + se(r.tfSpread) ** 2).toFixed(4)}`,
    `${fmt(r.oursS)} / ${r.tfS ? fmt(r.tfS) : "-"}`,
    `${fmt(r.oursRss, 0)} / ${r.tfRss ? fmt(r.tfRss, 0) : "-"}`,
    r.backend,
    `${Math.round(r.wasmRate)} (${r.wasmRmse.toFixed(4)})`,
  ]);
  return table(header, body);
}

async function runKeras(given) {
  const small = given ?? (await kerasInputs());
  if (!small) return { md: `## Keras\n\nSkipped: no ml-latest-small ratings at ${smallCsv}.\n` };
  const featDir = path.join(work, "keras-features");
  const counts = await exportFeatures(small.ratingsDir, small.out, featDir);
  await writeKerasInitialWeights(counts.width);
  const tfVenv = ensureVenv("keras");
  let tfVersion;
  const rows = [];
  for (const batch of KERAS.batches) {
    const r = await runKerasBatch(small, featDir, tfVenv, batch);
    tfVersion = r.tfVersion ?? tfVersion;
    rows.push(r.row);
  }
  return {
    md: [
      `## Keras: Dense(30 relu) -> Dense(${KERAS.hiddenUnits} relu) -> Dense(1), Adam lr ${KERAS.learningRate}, ${KERAS.epochs} epochs, validation tail ${KERAS.validationSplit}`,
      "",
      `ml-latest-small with our ALS factors (${fmt(counts.train)} training rows, ${fmt(counts.test)} test rows; features: movie factors then user factors, exported once to .npy for Python). ` +
        `samples/s = fit rows / epoch seconds (validation included), median over the epochs of every seed's run, as ms-keras logs it; test RMSE averaged over seeds ${KERAS.seeds.join(", ")}; early stopping off (patience = epochs) so both do the same work; TensorFlow starts from ms-keras's initial weights for each seed (same seeded glorot-uniform draw, zero biases), so only the trainers and their shuffles differ. ` +
        `${tfVersion ?? "TensorFlow: could not be installed (tools/python/ensure-venv.sh keras)"}.`,
      "",
      kerasTable(rows),
    ].join("\n"),
    tf: tfVersion,
  };
}

// --------------------------------------------------------------------------------------------- main

const started = performance.now();
const loadBefore = os.loadavg()[0];
const sections = [];
let sparkVersion;
let tf;
if (only.includes("etl")) {
  const r = await runEtl();
  sections.push(r.md);
  sparkVersion ??= r.spark;
}
let small;
if (only.includes("als")) {
  const r = await runAls();
  sections.push(r.md);
  sparkVersion ??= r.spark;
  small = r.small;
}
if (only.includes("keras")) {
  const r = await runKeras(small);
  sections.push(r.md);
  tf = r.tf;
}
const v = versions();
const env = Object.entries({
  MS_COMPARE_ONLY: process.env.MS_COMPARE_ONLY,
  MS_COMPARE_ETL_ROWS: process.env.MS_COMPARE_ETL_ROWS,
  MS_COMPARE_ALS_ROWS: process.env.MS_COMPARE_ALS_ROWS,
  MS_COMPARE_ROUNDS: process.env.MS_COMPARE_ROUNDS,
})
  .filter(([, val]) => val !== undefined)
  .map(([k, val]) => `${k}=${val} `)
  .join("");
const md = [
  "# Comparison benchmark: ms vs Spark, DuckDB and TensorFlow",
  "",
  `Command: \`pnpm build && ${env}node tools/bench/compare/bench.mjs\` (${((performance.now() - started) / 60000).toFixed(1)} min)`,
  "",
  ...sections.flatMap((s) => [s, ""]),
  "Peak RSS: each process tree's processes' own peak RSS (VmHWM from /proc, polled every 100 ms) summed: for spark-submit the JVM plus the Python driver; for ours the single Node process (worker threads included).",
  "",
  `Versions: Spark ${sparkVersion ?? v.pyspark} (pyspark ${v.pyspark}), ${v.java}, Python ${v.python}, pyarrow ${v.pyarrow}, DuckDB ${await duckdbVersion()}, Node ${process.version}${tf ? `, ${tf}` : ""}.`,
  "",
  `Load average (1 min) at start / end: ${loadBefore.toFixed(2)} / ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores. The machine is shared with other work, so single figures move by tens of per cent between runs; every ratio compares measurements alternated in the same run.`,
  "",
  `Machine: ${machine()}; commit ${gitCommit()}; ${new Date().toISOString()}`,
  "",
].join("\n");
process.stdout.write(md);
// A run of some parts only gets its own file, so it does not replace the full comparison of the day.
log(`written ${writeResult(process.env.MS_COMPARE_ONLY ? `compare-${only.join("-")}` : "compare", md)}`);
