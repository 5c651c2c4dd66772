#!/usr/bin/env node
/**
 * The als step's two engines side by side (run after `pnpm build`):
 *   node tools/bench/spark/bench.mjs
 * Environment: SPARK_BENCH_ROWS=2000000 changes the synthetic case (default 5M); SPARK_BENCH_ONLY=small|synthetic
 * picks one case; MS_MOVIELENS_SMALL points at ml-latest-small's directory.
 *
 * For ml-latest-small and 5M synthetic ratings (35k users x 27k movies, as the als benchmark),
 * the als step through its public definition (`alsStep.bind(...).run`, what `ms run` calls) with
 * als_engine=local (the baseline, same run) and als_engine=spark on a loopback standalone cluster
 * of two 1-core workers (`@ms/als/testing`): whole step time, fit time and test RMSE (same split),
 * plus the Spark run's time outside its fit (JVM and application start, staging, scoring,
 * writing). Rank 12, 10 iterations, reg 0.1, seed 42 for both. Generated data is cached in
 * tools/bench/work/spark.
 */
import { mkdirSync, rmSync, existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { alsStep, readFactors } from "@ms/als";
import { startSparkCluster } from "@ms/als/testing";
import { createLogger } from "@ms/contracts";
import { etl, writeSyntheticRatings, resolveEtlParams } from "@ms/etl";
import { freePort } from "@ms/tracking/testing";
import { ML_SMALL, ROOT, WORK, fmt, gitCommit, machine, table, writeResult } from "../lib.mjs";

const work = path.join(WORK, "spark");
mkdirSync(work, { recursive: true });
const ROWS = Number(process.env.SPARK_BENCH_ROWS ?? 5_000_000);
const only = process.env.SPARK_BENCH_ONLY;
const log = (msg) => process.stderr.write(`[spark-bench] ${msg}\n`);
const logger = createLogger({ level: process.env.LOG_LEVEL ?? "warn", name: "spark-bench" });

function sparkHome() {
  const r = spawnSync("bash", [path.join(ROOT, "tools/python/ensure-venv.sh"), "spark"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error("tools/python/ensure-venv.sh spark failed");
  const venv = r.stdout.trim().split("\n").pop();
  const py = readdirSync(path.join(venv, "lib")).find((d) => d.startsWith("python"));
  return path.join(venv, "lib", py, "site-packages", "pyspark");
}

async function ratingsDir(name, make) {
  const dir = path.join(work, name);
  if (!existsSync(path.join(dir, "manifest.json"))) await make(dir);
  const { readManifest } = await import("@ms/contracts");
  const manifest = await readManifest(dir, "ratings");
  return { kind: "ratings", dir, digest: manifest.digest, rows: manifest.details?.rows ?? manifest.metrics?.rows };
}

/** One run of the als step with the given `-P`-style fields; returns wall time and the manifest's figures. */
async function runStep(ref, fields, label) {
  const out = path.join(work, "out", `${label}-${Date.now()}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.dirname(out), { recursive: true });
  const bound = alsStep.bind(
    new Map(Object.entries({ als_rank: "12", als_max_iter: "10", als_reg_param: "0.1", seed: "42", split_prop: "0.8", ...fields })),
  );
  const started = performance.now();
  await bound.run({ logger, cacheDir: path.join(work, "cache"), inputsVerified: true }, { ratings: ref }, out);
  const wall = (performance.now() - started) / 1000;
  const f = await readFactors(out);
  const m = f.manifest.metrics;
  rmSync(out, { recursive: true, force: true });
  return { wall, fit: m.fit_seconds, rmse: m.test_rmse, train: m.training_nrows, executors: f.manifest.details.spark?.maxExecutors };
}

const cases = [];
if (!only || only === "small") {
  if (existsSync(path.join(ML_SMALL, "ratings.csv"))) {
    cases.push([
      "ml-latest-small (100,836 ratings)",
      await ratingsDir("ml-latest-small", (dir) =>
        etl({ ratingsCsv: path.join(ML_SMALL, "ratings.csv") }, resolveEtlParams({ max_row_limit: -1 }), dir),
      ),
    ]);
  } else log(`no ml-latest-small at ${ML_SMALL}: skipping it`);
}
if (!only || only === "synthetic") {
  const name = `synthetic-${ROWS}`;
  cases.push([
    `${fmt(ROWS)} synthetic ratings (35k users x 27k movies)`,
    await ratingsDir(name, async (dir) => {
      const csv = `${dir}.csv`;
      log(`generating ${ROWS} synthetic ratings...`);
      writeSyntheticRatings(csv, { rows: ROWS, users: 35_000, movies: 27_000, seed: 42 });
      await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), dir);
      rmSync(csv);
    }),
  ]);
}

const home = sparkHome();
process.env.SPARK_HOME = home;
log("starting a loopback standalone cluster (2 workers x 1 core x 2 GiB)...");
const cluster = await startSparkCluster({ sparkHome: home, port: freePort, workers: 2, coresPerWorker: 1, memoryPerWorker: "2g" });
const rows = [];
try {
  for (const [label, ref] of cases) {
    log(`${label}: local engine...`);
    const local = await runStep(ref, { als_engine: "local" }, "local");
    log(`${label}: local ${local.wall.toFixed(1)} s; Spark on ${cluster.master}...`);
    const spark = await runStep(
      ref,
      {
        als_engine: "spark",
        spark_master: cluster.master,
        spark_conf: "spark.executor.memory=1800m,spark.driver.memory=2g",
        spark_num_blocks: "4",
      },
      "spark",
    );
    log(`${label}: spark ${spark.wall.toFixed(1)} s (fit ${spark.fit.toFixed(1)} s)`);
    rows.push([label, "local (all cores)", local.wall, local.fit, local.rmse.toFixed(4), "1.00", "1.00"]);
    rows.push([
      label,
      `spark, ${spark.executors} executors x 1 core`,
      spark.wall,
      spark.fit,
      spark.rmse.toFixed(4),
      (spark.wall / local.wall).toFixed(1),
      (spark.fit / local.fit).toFixed(1),
    ]);
    rows.push([label, "spark outside its fit", spark.wall - spark.fit, "", "", "", ""]);
  }
} finally {
  await cluster.stop();
}

const header = ["ratings", "engine", "whole step s", "fit s", "test RMSE", "step / local", "fit / local"];
const md = [
  `# als engines: local vs Spark standalone on loopback (${new Date().toISOString().slice(0, 10)}, ${gitCommit()})`,
  "",
  `${machine()}; load average at the end ${(await import("node:os"))
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}.`,
  "rank 12, 10 iterations, reg_param 0.1, seed 42, split_prop 0.8 (same split on both engines); Spark: 2 workers x 1 core, spark_num_blocks 4.",
  "Command: `node tools/bench/spark/bench.mjs`.",
  "",
  table(header, rows),
  "",
].join("\n");
process.stdout.write(`${md}\n`);
log(`wrote ${writeResult("spark", md)}`);
