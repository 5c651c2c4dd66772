/**
 * `ms run -P als_engine=spark` on a real Spark standalone cluster on loopback (a Master and two
 * 1-core Workers from the pinned pyspark, started here and stopped afterwards), on a slice of
 * ml-latest-small: the run finishes and keras trains on the Spark factors, the master lists the
 * application as completed and both workers ran its executors, the factors pass the factors
 * contract, the test RMSE is within 0.01 of the local engine's on the same split, the tracking
 * child run carries the application id and master, a rerun (even against another master) is a
 * cache hit, and a worker killed in the middle of the fit either leaves a finished run or a
 * clear failure with nothing published. One cluster serves every test, and the worker is killed
 * during the first run's fit (Spark is slow to start: each run costs a minute or more here).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { readFactors } from "@ms/als";
import { startSparkCluster, type SparkCluster } from "@ms/als/testing";
import { ensurePythonVenv, freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v from "valibot";
import { BIN, cachedOf, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

const SMALL_DIR = process.env.MS_MOVIELENS_SMALL ?? path.resolve(__dirname, "../../../../shared/movielens/ml-latest-small");
const present = existsSync(path.join(SMALL_DIR, "ratings.csv"));
const DATA = [
  "--dataset",
  path.basename(SMALL_DIR),
  "--data-dir",
  path.dirname(SMALL_DIR),
  "-P",
  "max_row_limit=20000",
  "-P",
  "keras_epochs=1",
];
/** Small jobs on a loaded 2-core machine: no UI, a driver JIT that starts fast (executors keep C2: C1's larger frames overflow on ALS's task lineage). */
const FAST = "spark.ui.enabled=false,spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

let cluster: SparkCluster | undefined;
let box: Sandbox;
let env: NodeJS.ProcessEnv;
let spark: RunDoc;
let sparkArgs: string[];
let killed: KilledRun;
let killedFailedKinds: string[] | undefined;

async function tagsOf(runId: string): Promise<Record<string, string>> {
  for (const exp of await readdir(box.mlruns)) {
    const dir = path.join(box.mlruns, exp, runId, "tags");
    if (!existsSync(dir)) continue;
    const out: Record<string, string> = {};
    for (const name of await readdir(dir)) out[name] = await readFile(path.join(dir, name), "utf8");
    return out;
  }
  throw new Error(`no run ${runId} under ${box.mlruns}`);
}

beforeAll(async () => {
  if (!present) return;
  const venv = await ensurePythonVenv("spark");
  const lib = path.join(venv, "lib");
  const py = (await readdir(lib)).find((d) => d.startsWith("python"));
  const sparkHome = path.join(lib, py ?? "python3", "site-packages", "pyspark");
  cluster = await startSparkCluster({ sparkHome, port: freePort, workers: 2, coresPerWorker: 1, memoryPerWorker: "1g" });
  box = await sandbox("ms-spark-");
  env = { SPARK_HOME: sparkHome };
  sparkArgs = [
    ...DATA,
    "-P",
    "als_engine=spark",
    "-P",
    `spark_master=${cluster.master}`,
    "-P",
    `spark_conf=${FAST}`,
    "-P",
    "spark_num_blocks=2",
  ];
  // The first run loses a worker in the middle of its fit (one Spark run fewer than a separate test).
  const objects = path.join(box.cache, "objects");
  killed = await runKillingWorker(sparkArgs, () => cluster!.killWorker(1));
  if (killed.code !== 0) {
    // Spark gave up instead of rescheduling: the failure is checked below; the rest runs on a whole cluster again.
    killedFailedKinds = [];
    for (const name of existsSync(objects) ? await readdir(objects) : []) {
      const manifest = path.join(objects, name, "manifest.json");
      if (existsSync(manifest)) killedFailedKinds.push((JSON.parse(await readFile(manifest, "utf8")) as { kind: string }).kind);
    }
    await cluster.restartWorker(1);
    spark = await runJson(sparkArgs, box, env);
  } else spark = JSON.parse(killed.stdout) as RunDoc;
}, 900_000);

interface KilledRun {
  code: number | null;
  stdout: string;
  stderr: string;
  killedAt: boolean;
}

/** Runs `ms run --json` and calls `kill` once the als step's Spark progress reports the fit phase. */
async function runKillingWorker(args: string[], kill: () => void): Promise<KilledRun> {
  const child = spawn(process.execPath, [BIN, "run", ...args, "--json"], {
    cwd: box.root,
    env: { ...box.env, ...env, LOG_LEVEL: "debug" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  let killedAt = false;
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
    if (!killedAt && /"phase":"fit"/.test(d)) {
      killedAt = true;
      kill();
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { code, stdout, stderr, killedAt };
}
afterAll(async () => {
  await cluster?.stop();
  await box?.dispose();
});

/** What the Spark engine adds to the factors manifest's details (the part these tests read). */
const SparkFactorsDetails = v.object({
  engine: v.string(),
  spark: v.object({ applicationId: v.string(), master: v.string(), maxExecutors: v.number() }),
});

describe.skipIf(!present)("als_engine=spark on a loopback standalone cluster", () => {
  it("finishes, and keras trains on the Spark factors", () => {
    expect(cachedOf(spark)).toEqual({ download: false, etl: false, als: false, fm: false, keras: false, rank: false, ranking: false });
    const als = spark.steps[2];
    expect(als.metrics.training_nrows + als.metrics.test_nrows).toBe(20_000);
    expect(Number.isFinite(spark.steps[4].metrics.test_rmse)).toBe(true);
  });

  it("the master lists the application as completed, and both workers ran its executors", async () => {
    // Two 1-core workers, one executor each at most: two executors at once means both ran it.
    const factors = await readFactors(spark.steps[2].outputs.factors.dir as string);
    const details = v.parse(SparkFactorsDetails, factors.manifest.details);
    expect(details.engine).toBe("spark");
    expect(details.spark.master).toBe(cluster!.master);
    const id = details.spark.applicationId;
    expect(id).toMatch(/^app-/);
    const status = await cluster!.status();
    const app = status.completedapps.find((a) => a.id === id);
    expect(app?.state).toBe("FINISHED");
    expect(status.activeapps.find((a) => a.id === id)).toBeUndefined();
    // The killed worker's page went with it; the survivor's lists the application's executor.
    for (const ui of killed.code === 0 ? cluster!.workerUis.slice(0, 1) : cluster!.workerUis) {
      const worker = (await (await fetch(`${ui}/json/`)).json()) as {
        finishedexecutors: { appid: string }[];
        executors: { appid: string }[];
      };
      expect(
        [...worker.finishedexecutors, ...worker.executors].some((e) => e.appid === id),
        ui,
      ).toBe(true);
    }
    expect(details.spark.maxExecutors).toBe(2);
  });

  it("the tracking child run records the application id and the master URL", async () => {
    const als = spark.steps[2];
    const factors = await readFactors(als.outputs.factors.dir as string);
    const tags = await tagsOf(als.runId);
    expect(tags["ms.spark.applicationId"]).toBe(v.parse(SparkFactorsDetails, factors.manifest.details).spark.applicationId);
    expect(tags["ms.spark.master"]).toBe(cluster!.master);
  });

  it("the factor files pass the factors contract, and the test RMSE is within 0.01 of the local engine's on the same split", async () => {
    const factors = await readFactors(spark.steps[2].outputs.factors.dir as string);
    expect(factors.rank).toBe(12);
    expect(factors.userIds.length).toBeGreaterThan(100);
    const local = await runJson([...DATA, "-P", "als_engine=local"], box, env);
    expect(cachedOf(local)).toEqual({ download: true, etl: true, als: false, fm: false, keras: false, rank: true, ranking: false });
    const [s, l] = [spark.steps[2].metrics, local.steps[2].metrics];
    expect(s.training_nrows).toBe(l.training_nrows);
    expect(s.test_nrows).toBe(l.test_nrows);
    expect(s.test_cold_start_nrows).toBe(l.test_cold_start_nrows);
    expect(Math.abs(s.test_rmse - l.test_rmse)).toBeLessThan(0.01);
    const localFactors = await readFactors(local.steps[2].outputs.factors.dir as string);
    expect([...factors.userIds]).toEqual([...localFactors.userIds]);
    expect([...factors.itemIds]).toEqual([...localFactors.itemIds]);
  }, 300_000);

  it("a rerun is a cache hit, even against another master (the master is not in the key)", async () => {
    const again = await runJson(sparkArgs, box, env);
    expect(cachedOf(again)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true, rank: true, ranking: true });
    const elsewhere = await runJson(
      [...DATA, "-P", "als_engine=spark", "-P", "spark_master=local[1]", "-P", "spark_num_blocks=2"],
      box,
      env,
    );
    expect(cachedOf(elsewhere).als).toBe(true);
  }, 300_000);

  it("a worker killed during the fit: the run finished on the other, or failed clearly and published nothing", () => {
    expect(killed.killedAt, killed.stderr.slice(-3000)).toBe(true);
    if (killed.code === 0) {
      // Spark rescheduled the lost executor's tasks; the results above come from this run.
      expect(spark.steps[2].cached).toBe(false);
    } else {
      expect(killed.stderr).toMatch(/Spark application failed|spark-submit/);
      // Nothing of the failed als run in the cache.
      expect(killedFailedKinds).not.toContain("factors");
    }
    process.stderr.write(
      `[spark test] the run that lost a worker ${killed.code === 0 ? "finished (Spark rescheduled)" : `failed with exit ${killed.code}`}\n`,
    );
  });

  it("leaves no per-run scratch in the staging directory, only the content-addressed ratings", async () => {
    expect(await readdir(path.join(box.cache, "spark-staging", "runs"))).toEqual([]);
    expect(await readdir(path.join(box.cache, "spark-staging", "ratings"))).toHaveLength(1);
  });
});
