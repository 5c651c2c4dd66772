/**
 * The Spark engine against real Spark (the pinned pyspark of tools/python/ensure-venv.sh, no
 * cluster: local masters): the job's Spark SQL split puts every row on the side splitMask says,
 * a `local[2]` fit publishes factors that pass the factors contract, and each failure (no
 * spark-submit, an unreachable master, an application that fails, an abort) is the documented
 * error with nothing published and no process left. The loopback standalone cluster is exercised by the driver's spark test.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { Writable } from "node:stream";
import { BadParameterError, createLogger, digestFile, exitCodeFor, InterruptedError, NetworkError, splitMask } from "@ms/contracts";
import { readRatingsColumns, resolveRatingsFile } from "@ms/etl";
import { ensurePythonVenv, freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFactors } from "../adapter.js";
import { resolveAlsParams, type AlsStepParams } from "../params.js";
import { syntheticRatingsDir, writeRatingsParquet } from "../__tests__/fixtures.js";
import { findSparkSubmit } from "./conf.js";
import { alsSpark } from "./spark.js";
import { SparkApplicationError } from "./submit.js";

let root: string;
let sparkHome: string;
let ratingsDir: string;
const savedHome = process.env.SPARK_HOME;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-spark-"));
  const venv = await ensurePythonVenv("spark");
  const lib = path.join(venv, "lib");
  const py = (await readdir(lib)).find((d) => d.startsWith("python"));
  sparkHome = path.join(lib, py ?? "python3", "site-packages", "pyspark");
  process.env.SPARK_HOME = sparkHome;
  ratingsDir = await syntheticRatingsDir(root, "synth", { rows: 3000, users: 60, movies: 80 });
});
afterAll(async () => {
  if (savedHome === undefined) delete process.env.SPARK_HOME;
  else process.env.SPARK_HOME = savedHome;
  await rm(root, { recursive: true, force: true });
});

/** A small fit on Spark, with `o` on top. */
const spark = (o: Partial<AlsStepParams>): AlsStepParams =>
  resolveAlsParams({ als_rank: 4, als_max_iter: 3, als_num_threads: 1, als_engine: "spark", spark_num_blocks: 2, ...o });
/** Small jobs on a loaded 2-core machine: no UI, and a JIT that starts fast. */
const FAST = "spark.ui.enabled=false,spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

describe("the Spark engine on local masters", () => {
  it("spark_master=local[2] fits without a cluster, publishes factors in our contract, and splits exactly as splitMask", async () => {
    // The split check: edge ids (0, negatives, INT32 extremes) and hashed ones, with seeds that
    // exercise `seed | 0`, split by the job's Spark SQL and compared with splitMask row by row.
    // It rides on the fit's application (one JVM start less).
    const n = 4000;
    const userIds = new Int32Array(n);
    const movieIds = new Int32Array(n);
    const edges = [0, 1, -1, 2147483647, -2147483648, 65535, 65536, 2166136261 | 0];
    for (let i = 0; i < n; i++) {
      userIds[i] = i < edges.length * edges.length ? edges[i % edges.length] : Math.imul(i, 0x9e3779b1);
      movieIds[i] = i < edges.length * edges.length ? edges[Math.floor(i / edges.length)] : Math.imul(i ^ 0x5bd1, 0x85ebca6b) >> (i % 17);
    }
    const splitInput = path.join(root, "split-input.parquet");
    await writeRatingsParquet(splitInput, { userIds, movieIds, ratings: new Float32Array(n).fill(3) });
    const cases: [number, number][] = [
      [42, 0.8],
      [0, 0.5],
      [-1, 0.8],
      [2 ** 40 + 3, 0.3],
      [7, 0.999],
    ];
    const splitOut = path.join(root, "split-out");

    const cacheDir = path.join(root, "cache");
    const out = path.join(root, "factors-local2");
    const r = await alsSpark(
      ratingsDir,
      spark({ spark_master: "local[2]", spark_conf: FAST }),
      out,
      { cacheDir },
      { jobConfig: { splitCheck: { ratings: splitInput, out: splitOut, cases } } },
    );
    const factors = await readFactors(out);
    expect(factors.rank).toBe(4);
    expect(factors.userIds.length).toBe(factors.details.users);
    expect(factors.manifest.details).toMatchObject({
      engine: "spark",
      spark: { applicationId: expect.stringMatching(/^local-/), master: "local[2]" },
    });
    expect(r.metrics.training_nrows + r.metrics.test_nrows).toBe(3000);
    // The same split as the local engine.
    const cols = await readRatingsColumns(ratingsDir);
    const mask = splitMask(cols.userIds, cols.movieIds, spark({}).seed, spark({}).split_prop);
    expect(r.metrics.training_nrows).toBe(mask.reduce((a, b) => a + b, 0));
    for (const v of Object.values(r.metrics)) expect(Number.isFinite(v)).toBe(true);
    // The staged ratings stay (content-addressed); the run's own scratch is gone.
    const staging = path.join(cacheDir, "spark-staging");
    expect(await readdir(path.join(staging, "ratings"))).toHaveLength(1);
    expect(await readdir(path.join(staging, "runs"))).toEqual([]);

    const instance = await DuckDBInstance.create(":memory:");
    const conn = await instance.connect();
    try {
      const rows = (await conn.runAndReadAll(`SELECT * FROM read_parquet('${splitOut}/*.parquet')`)).getRowObjectsJS() as Record<
        string,
        number | boolean
      >[];
      expect(rows).toHaveLength(n);
      const side = new Map<string, Record<string, number | boolean>>();
      for (const row of rows) side.set(`${row.userId},${row.movieId}`, row);
      cases.forEach(([seed, prop], c) => {
        const m = splitMask(userIds, movieIds, seed, prop);
        let mismatches = 0;
        let train = 0;
        for (let i = 0; i < n; i++) {
          const row = side.get(`${userIds[i]},${movieIds[i]}`);
          if (!row || (row[`train_${c}`] ? 1 : 0) !== m[i]) mismatches++;
          train += m[i];
        }
        expect(mismatches, `seed ${seed}, split_prop ${prop}`).toBe(0);
        // Both sides are populated, so the comparison means something.
        expect(train).toBeGreaterThan(0);
        expect(train).toBeLessThan(n);
      });
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }, 300_000);

  it("refuses when there is no spark-submit: exit 2 naming SPARK_HOME or the engine parameter", async () => {
    process.env.SPARK_HOME = path.join(root, "no-spark-here");
    try {
      const error = await alsSpark(ratingsDir, spark({ spark_master: "local[1]" }), path.join(root, "never"), {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BadParameterError);
      expect(String(error)).toContain("SPARK_HOME");
      expect(exitCodeFor(error)).toBe(2);
      delete process.env.SPARK_HOME;
      expect(() => findSparkSubmit({ PATH: root })).toThrow(/als_engine.*spark-submit/);
    } finally {
      process.env.SPARK_HOME = sparkHome;
    }
    expect(existsSync(path.join(root, "never"))).toBe(false);
  });

  it("an unreachable master is a NetworkError (exit 6) and publishes nothing", async () => {
    const port = await freePort();
    const out = path.join(root, "factors-unreachable");
    const error = await alsSpark(ratingsDir, spark({ spark_master: `spark://127.0.0.1:${port}`, spark_conf: FAST }), out, {
      cacheDir: path.join(root, "cache"),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect(String(error)).toContain(`127.0.0.1:${port}`);
    expect(exitCodeFor(error)).toBe(6);
    expect(existsSync(out)).toBe(false);
    expect(await readdir(path.join(root, "cache", "spark-staging", "runs"))).toEqual([]);
  }, 300_000);

  it("a failed application is exit 1 with Spark's own error text, and publishes nothing", async () => {
    // A staged ratings file that is not Parquet (same name and size: the stage is reused) makes the read fail in Spark.
    const cacheDir = path.join(root, "cache-broken");
    const { file } = await resolveRatingsFile(ratingsDir);
    const hex = (await digestFile(file)).digest.replace(/^sha256:/, "");
    const staged = path.join(cacheDir, "spark-staging", "ratings", hex, "ratings.parquet");
    await mkdir(path.dirname(staged), { recursive: true });
    await writeFile(staged, Buffer.alloc((await stat(file)).size, 0x41));
    const out = path.join(root, "factors-failed");
    const error = await alsSpark(ratingsDir, spark({ spark_master: "local[1]", spark_conf: FAST }), out, { cacheDir }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SparkApplicationError);
    expect(exitCodeFor(error)).toBe(1);
    // Spark's own words about the file.
    expect(String(error)).toMatch(/Parquet|parquet/);
    expect(existsSync(out)).toBe(false);
    expect(await readdir(path.join(cacheDir, "spark-staging", "runs"))).toEqual([]);
  }, 300_000);
  it("an abort (Ctrl-C) once the application runs kills spark-submit's process group and publishes nothing", async () => {
    const cacheDir = path.join(root, "cache-abort");
    const out = path.join(root, "factors-aborted");
    const controller = new AbortController();
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        if (chunk.toString().includes("Spark application started")) controller.abort(new InterruptedError("test: aborted"));
        done();
      },
    });
    const logger = createLogger({ level: "info", destination });
    const error = await alsSpark(ratingsDir, spark({ spark_master: "local[1]", spark_conf: FAST }), out, {
      cacheDir,
      logger,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(controller.signal.aborted).toBe(true);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(exitCodeFor(error)).toBe(130);
    expect(existsSync(out)).toBe(false);
    // Aborted before the job wrote anything, or its run directory removed.
    const runs = path.join(cacheDir, "spark-staging", "runs");
    expect(existsSync(runs) ? await readdir(runs) : []).toEqual([]);
    // No process of that application is left: its JVM and the job's Python both carried the run's staging path.
    const ps = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" }).stdout;
    expect(ps.split("\n").filter((l) => l.includes(cacheDir))).toEqual([]);
  }, 300_000);
});
