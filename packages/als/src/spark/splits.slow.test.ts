/**
 * The Spark job under every evaluation protocol, on a real standalone cluster on loopback (one
 * Master, one 1-core Worker from the pinned pyspark): its Spark SQL puts every row of a time-keyed
 * ratings file on the side splitMaskOf says, for split=time and for several kfold folds and seeds
 * (compared row by row); a kfold and a time fit on the cluster count the local engine's training
 * and test rows and land within 0.01 test RMSE of it; and a split=file fit scores its cold test
 * rows by the cold-start rule (its test error is its own factors' error on the warm rows plus the
 * rule's on the cold ones, to six digits, and within 0.01 RMSE of the local engine's).
 */
import { readdir, rm, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { ColdStartRule, splitMaskOf, type SplitSpec } from "@ms/contracts";
import { etl, readRatingsColumns, resolveEtlParams, resolveRatingsFile, writeSyntheticRatings } from "@ms/etl";
import { ensurePythonVenv, freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFactors } from "../adapter.js";
import { als } from "../als.js";
import { resolveAlsParams, type AlsStepParams } from "../params.js";
import { predict } from "../predict.js";
import { alsSpark } from "./spark.js";
import { startSparkCluster, type SparkCluster } from "./testing.js";

let root: string;
let cluster: SparkCluster | undefined;
let csv: string;
const savedHome = process.env.SPARK_HOME;
/** Small jobs on a loaded 2-core machine: no UI, a driver JIT that starts fast. */
const FAST = "spark.ui.enabled=false,spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-spark-splits-"));
  const venv = await ensurePythonVenv("spark");
  const lib = path.join(venv, "lib");
  const py = (await readdir(lib)).find((d) => d.startsWith("python"));
  const sparkHome = path.join(lib, py ?? "python3", "site-packages", "pyspark");
  process.env.SPARK_HOME = sparkHome;
  cluster = await startSparkCluster({ sparkHome, port: freePort, workers: 1, coresPerWorker: 1, memoryPerWorker: "1g" });
  csv = path.join(root, "ratings.csv");
  writeSyntheticRatings(csv, { seed: 5, rows: 3000, users: 60, movies: 90 });
}, 300_000);
afterAll(async () => {
  await cluster?.stop();
  if (savedHome === undefined) delete process.env.SPARK_HOME;
  else process.env.SPARK_HOME = savedHome;
  await rm(root, { recursive: true, force: true });
});

/**
 * Ten iterations and a firm regularisation: the engines start from different random factors and
 * agree within 0.01 test RMSE once converged to the same solution (with reg 0.1, rank-4 fits of
 * this small table settle in different minima, 0.011-0.015 apart).
 */
const quick = (o: Partial<AlsStepParams>): AlsStepParams =>
  resolveAlsParams({ als_rank: 4, als_max_iter: 10, als_reg_param: 0.5, als_num_threads: 1, spark_num_blocks: 2, ...o });
const onCluster = (o: Partial<AlsStepParams>): AlsStepParams =>
  quick({ als_engine: "spark", spark_master: cluster?.master, spark_conf: FAST, ...o });

/** Each (userId, movieId) row of the job's split output, by pair. */
async function splitSides(dir: string): Promise<Map<string, Record<string, unknown>>> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    const rows = (await conn.runAndReadAll(`SELECT * FROM read_parquet('${dir}/*.parquet')`)).getRowObjectsJS();
    return new Map(rows.map((r) => [`${String(r.userId)},${String(r.movieId)}`, r]));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe("the Spark job's split protocols on a loopback cluster", () => {
  it("time and kfold: the job's sides equal splitMaskOf row by row, and a time fit counts the local engine's rows", async () => {
    const ratings = path.join(root, "time-ratings");
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, split: "time" }), ratings);
    const cols = await readRatingsColumns(ratings);
    expect(cols.splitKey).toBeDefined();
    const cases: SplitSpec[] = [
      { kind: "time", seed: 42, splitProp: 0.8 },
      { kind: "time", seed: 42, splitProp: 0.5 },
      ...[1, 2, 3].map((fold) => ({ kind: "kfold" as const, seed: 42, splitProp: 0.8, folds: 3, fold })),
      { kind: "kfold", seed: -1, splitProp: 0.8, folds: 7, fold: 7 },
      { kind: "kfold", seed: 2 ** 40 + 3, splitProp: 0.8, folds: 20, fold: 1 },
    ];
    const splitOut = path.join(root, "split-out");
    const { file } = await resolveRatingsFile(ratings);
    const params = onCluster({ split: "time" });
    const spark = await alsSpark(
      ratings,
      params,
      path.join(root, "time-spark"),
      { cacheDir: path.join(root, "cache") },
      { jobConfig: { splitCheck: { ratings: file, out: splitOut, cases } } },
    );
    const sides = await splitSides(splitOut);
    expect(sides.size).toBe(cols.rows);
    cases.forEach((spec, c) => {
      const mask = splitMaskOf(spec, cols);
      let mismatches = 0;
      let train = 0;
      for (let i = 0; i < cols.rows; i++) {
        const row = sides.get(`${cols.userIds[i]},${cols.movieIds[i]}`);
        if (!row || (row[`train_${c}`] ? 1 : 0) !== mask[i]) mismatches++;
        train += mask[i];
      }
      expect(mismatches, JSON.stringify(spec)).toBe(0);
      expect(train).toBeGreaterThan(0);
      expect(train).toBeLessThan(cols.rows);
    });
    const local = await als({ ratings }, quick({ split: "time" }), path.join(root, "time-local"));
    expect(spark.metrics.training_nrows).toBe(local.metrics.training_nrows);
    expect(spark.metrics.test_nrows).toBe(local.metrics.test_nrows);
    expect(spark.metrics.test_cold_start_nrows).toBe(local.metrics.test_cold_start_nrows);
    expect(Math.abs(spark.metrics.test_rmse - local.metrics.test_rmse)).toBeLessThan(0.01);
    expect(spark.manifest.details).toMatchObject({ split: { kind: "time", splitProp: 0.8 } });
  }, 600_000);

  it("kfold: a fold's fit on the cluster tests exactly that fold, within 0.01 test RMSE of the local engine", async () => {
    const ratings = path.join(root, "kfold-ratings");
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, split: "kfold" }), ratings);
    const p = { split: "kfold" as const, folds: 3, fold: 2 };
    const spark = await alsSpark(ratings, onCluster(p), path.join(root, "kfold-spark"), { cacheDir: path.join(root, "cache") });
    const local = await als({ ratings }, quick(p), path.join(root, "kfold-local"));
    expect(spark.metrics.test_nrows).toBe(local.metrics.test_nrows);
    expect(spark.metrics.training_nrows).toBe(local.metrics.training_nrows);
    expect(Math.abs(spark.metrics.test_rmse - local.metrics.test_rmse)).toBeLessThan(0.01);
    expect(spark.manifest.details).toMatchObject({ split: { kind: "kfold", folds: 3, fold: 2 } });
  }, 600_000);

  it("file: cold test rows are counted and scored by the cold-start rule, as the local engine scores them", async () => {
    const cols0 = await readRatingsColumns(
      (await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), path.join(root, "plain"))).outputs.ratings.dir,
    );
    const seen = new Set(Array.from(cols0.userIds, (u, i) => `${u}:${cols0.movieIds[i]}`));
    const users = [...new Set(cols0.userIds)];
    const movies = [...new Set(cols0.movieIds)];
    const lines: string[] = [];
    for (let k = 0; lines.length < 20; k++) {
      const [u, m] = [users[k % users.length], movies[(k * 7) % movies.length]];
      if (!seen.has(`${u}:${m}`)) lines.push(`${u},${m},${1 + (k % 5)},100`);
    }
    // Unseen users and movies, with ratings far from the warm ones' so dropping them would move the error.
    for (let k = 0; k < 10; k++) lines.push(`${100_000 + k},${movies[k]},0.5,100`, `${users[k]},${900_000 + k},5,100`);
    const test = path.join(root, "test.csv");
    await writeFile(test, `userId,movieId,rating,timestamp\n${lines.join("\n")}\n`);
    const ratings = path.join(root, "file-ratings");
    await etl({ ratingsCsv: csv, testRatings: test }, resolveEtlParams({ max_row_limit: -1, split: "file", test_ratings: test }), ratings);
    const spark = await alsSpark(ratings, onCluster({ split: "file" }), path.join(root, "file-spark"), {
      cacheDir: path.join(root, "cache"),
    });
    const local = await als({ ratings }, quick({ split: "file" }), path.join(root, "file-local"));
    expect(spark.metrics).toMatchObject({ test_nrows: 40, test_cold_rows: 20, training_nrows: cols0.rows });
    expect(local.metrics).toMatchObject({ test_nrows: 40, test_cold_rows: 20 });
    expect(Math.abs(spark.metrics.test_rmse - local.metrics.test_rmse)).toBeLessThan(0.01);
    // Exactly: the job's test error is its own factors' on the warm rows plus the rule's on the cold ones.
    const cols = await readRatingsColumns(ratings);
    const mask = splitMaskOf({ kind: "file", seed: 42, splitProp: 0.8 }, cols);
    const rule = new ColdStartRule(cols, mask);
    const f = await readFactors(path.join(root, "file-spark"));
    const knows = (ids: Int32Array, id: number) => ids.includes(id);
    const testRows = [...mask.keys()].filter((i) => mask[i] === 0);
    const warm = testRows.filter((i) => knows(f.userIds, cols.userIds[i]) && knows(f.itemIds, cols.movieIds[i]));
    expect(warm).toHaveLength(20);
    const pred = await predict(
      path.join(root, "file-spark"),
      Int32Array.from(warm, (i) => cols.userIds[i]),
      Int32Array.from(warm, (i) => cols.movieIds[i]),
    );
    let sse = 0;
    warm.forEach((i, k) => {
      sse += (pred[k] - cols.ratings[i]) ** 2;
    });
    for (const i of testRows) if (!warm.includes(i)) sse += (rule.predict(cols.userIds[i], cols.movieIds[i]) - cols.ratings[i]) ** 2;
    expect(spark.metrics.test_mse).toBeCloseTo(sse / 40, 6);
  }, 600_000);
});
