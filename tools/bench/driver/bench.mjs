#!/usr/bin/env node
/**
 * Driver benchmark (after `pnpm build`): `node tools/bench/driver/bench.mjs` or `pnpm bench driver`.
 *
 * For ml-latest-small (local mirror) and ml-20m-shaped synthetic data it measures, each as a whole
 * process under /usr/bin/time (wall seconds including process start, peak RSS):
 *   - direct:      the four steps' library functions called in one process (no cache, no tracking)
 *   - ms cold:     `ms run` on an empty cache (time per step from its --json), and the same with
 *                  `--no-report`, which tells the driver's own overhead from the report's cost
 *   - ms warm:     `ms run` again, every step a cache hit (median of MS_BENCH_WARM_REPEATS, default 5)
 *   - ms warm, no memo: the same with MS_CACHE_REHASH=1, so every hit re-hashes its files instead of
 *                  trusting the file identities recorded when they were last hashed
 * and reports the driver's overhead over direct (target < 5%) and the fully cached wall time with
 * hit verification on (target < 0.5 s). Environment:
 *   MS_BENCH_DRIVER_ROWS   synthetic rows (default 2,000,000; ml-20m has 20,000,263)
 *   MS_BENCH_DRIVER_ONLY   small | synthetic (default both)
 *   MS_BENCH_DRIVER_COLD_REPEATS   cold/direct pairs per dataset (default 3 for small, 2 for synthetic)
 *   MS_BENCH_DRIVER_WARM_ONLY=1    one cold run to fill the cache, no direct runs: the hit figures alone
 *                                  (for 20M rows, where a cold run takes minutes)
 */
import { mkdirSync, existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT, WORK, ML_SMALL, timed, median, table, machine, gitCommit, writeResult, freshDir, syntheticRatingsCsv } from "../lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(ROOT, "packages/driver/dist/bin.js");
const DIRECT = path.join(HERE, "direct.mjs");
const ROWS = Number(process.env.MS_BENCH_DRIVER_ROWS ?? 2_000_000);
const ONLY = process.env.MS_BENCH_DRIVER_ONLY;
const WARM_REPEATS = Number(process.env.MS_BENCH_WARM_REPEATS ?? 5);
const BASE = path.join(WORK, "driver");
mkdirSync(BASE, { recursive: true });

if (!existsSync(BIN)) {
  process.stderr.write(`${BIN} is missing: run 'pnpm build' first\n`);
  process.exit(1);
}

/** The same parameters for the driver (-P) and for direct calls (the same names, resolved there). */
const P = { max_row_limit: -1, als_max_iter: 10, als_rank: 12, keras_epochs: 3 };
const DIRECT_PARAMS = { etl: { max_row_limit: -1 }, als: { als_max_iter: 10, als_rank: 12 }, keras: { keras_epochs: 3 } };
const pArgs = Object.entries(P).flatMap(([k, v]) => ["-P", `${k}=${v}`]);

const fresh = (name) => freshDir(BASE, name);

async function direct(source) {
  const out = fresh("direct");
  const r = await timed(process.execPath, [DIRECT, out, ...source.direct, JSON.stringify(DIRECT_PARAMS)], { cwd: HERE });
  const doc = JSON.parse(r.stdout.trim().split("\n").pop());
  return { wall: r.seconds, rss: r.rssMiB, steps: doc.seconds, own: sum(Object.values(doc.own)) };
}

async function driver(source, cache, mlruns, env = {}, extra = []) {
  const r = await timed(
    process.execPath,
    [BIN, "run", ...source.driver, ...pArgs, "--cache-dir", cache, "--tracking-uri", mlruns, "--json", ...extra],
    { cwd: BASE, env: { ...process.env, LOG_LEVEL: "warn", ...env } },
  );
  const doc = JSON.parse(r.stdout);
  const own = sum(doc.steps.filter((s) => s.step !== "download").map((s) => s.metrics.seconds ?? 0));
  return {
    wall: r.seconds,
    rss: r.rssMiB,
    steps: Object.fromEntries(doc.steps.map((s) => [s.step, s.seconds])),
    cached: doc.steps.map((s) => s.cached),
    own,
  };
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const rows = [];
const summary = [];
const warmOnly = process.env.MS_BENCH_DRIVER_WARM_ONLY === "1";

/** Cold runs on empty caches, alternated with direct runs (so that machine noise hits both alike); the last cold cache is kept. */
async function coldRuns(label, source, coldRepeats) {
  const directs = [];
  const colds = [];
  const bareColds = [];
  let cache;
  let mlruns;
  for (let i = 0; i < (warmOnly ? 1 : coldRepeats); i++) {
    if (!warmOnly) {
      process.stderr.write(`${label}: direct ${i + 1}/${coldRepeats}\n`);
      directs.push(await direct(source));
    }
    cache = fresh("cache");
    mlruns = fresh("mlruns");
    process.stderr.write(`${label}: ms run cold ${i + 1}/${coldRepeats}\n`);
    const c = await driver(source, cache, mlruns);
    if (c.cached.some(Boolean)) throw new Error("cold run hit the cache");
    colds.push(c);
    if (!warmOnly) {
      // The same cold run without the report: the driver's own overhead apart from what the report adds.
      process.stderr.write(`${label}: ms run cold --no-report ${i + 1}/${coldRepeats}\n`);
      const bare = await driver(source, fresh("cache-bare"), fresh("mlruns-bare"), {}, ["--no-report"]);
      if (bare.cached.some(Boolean)) throw new Error("cold run hit the cache");
      bareColds.push(bare);
    }
  }
  return { directs, colds, bareColds, cache, mlruns };
}

/** Fully cached runs on the cold runs' cache, with the identity memo and re-hashing every hit, alternated. */
async function warmRuns(label, source, cache, mlruns) {
  const warms = [];
  const rehashed = [];
  // One unmeasured run first: if a step package was rebuilt meanwhile (its code digest changed),
  // that run recomputes the step, as it should, and the measured runs are fully cached again.
  const settle = await driver(source, cache, mlruns);
  if (!settle.cached.every(Boolean))
    process.stderr.write(
      `${label}: a step package changed since the cold run; recomputed ${settle.cached.filter((c) => !c).length} step(s)\n`,
    );
  for (let i = 0; i < WARM_REPEATS; i++) {
    const w = await driver(source, cache, mlruns);
    if (!w.cached.every(Boolean)) throw new Error("warm run missed the cache (a step package rebuilt during the benchmark?)");
    warms.push(w);
    // Alternated with the memo runs so that machine noise hits both alike.
    const r = await driver(source, cache, mlruns, { MS_CACHE_REHASH: "1" });
    if (!r.cached.every(Boolean)) throw new Error("warm run without the memo missed the cache");
    rehashed.push(r);
  }
  return { warms, rehashed };
}

/** The median run of each kind as a table row. */
function addRows(label, { directs, colds, bareColds, warms, rehashed }) {
  const pick = (runs) => runs.slice().sort((a, b) => a.wall - b.wall)[Math.floor((runs.length - 1) / 2)];
  const stepCols = (r) => ["download", "etl", "als", "keras"].map((s) => r.steps[s] ?? 0);
  const c = pick(colds);
  const w = pick(warms);
  const h = pick(rehashed);
  if (!warmOnly) {
    const d = pick(directs);
    rows.push([label, "direct (library calls, 1 process)", d.wall, d.rss, ...stepCols(d)]);
  }
  rows.push([label, "ms run, cold cache", c.wall, c.rss, ...stepCols(c)]);
  if (!warmOnly) {
    const b = pick(bareColds);
    rows.push([label, "ms run, cold cache, --no-report", b.wall, b.rss, ...stepCols(b)]);
  }
  rows.push([
    label,
    `ms run, fully cached, hits verified with the identity memo (median of ${WARM_REPEATS})`,
    w.wall,
    w.rss,
    ...stepCols(w),
  ]);
  rows.push([
    label,
    `ms run, fully cached, every hit re-hashed (MS_CACHE_REHASH=1, median of ${WARM_REPEATS})`,
    h.wall,
    h.rss,
    ...stepCols(h),
  ]);
}

/** The figures the targets are about: the cached wall time, and the driver's overhead over direct calls. */
function addSummary(label, { directs, colds, bareColds, warms, rehashed }) {
  const wWall = median(warms.map((r) => r.wall));
  summary.push([label, "fully cached run wall, hits verified, incl. process start", `${wWall.toFixed(3)} s`, "< 0.5 s"]);
  summary.push([
    label,
    "fully cached: re-hash every hit / identity memo",
    `${(median(rehashed.map((r) => r.wall)) / wWall).toFixed(2)}x`,
    "",
  ]);
  if (warmOnly) return;
  const dWall = median(directs.map((r) => r.wall));
  const cWall = median(colds.map((r) => r.wall));
  summary.push([
    label,
    "driver overhead, cold (ms run / direct)",
    `${(cWall / dWall).toFixed(3)} (${(((cWall - dWall) / dWall) * 100).toFixed(1)}%)`,
    "< 1.05",
  ]);
  // Wall time outside the steps' own compute (process start, imports, hashing, cache, tracking):
  // immune to the step-speed noise of a shared machine.
  const dRest = median(directs.map((r) => r.wall - r.own));
  const cRest = median(colds.map((r) => r.wall - r.own));
  summary.push([
    label,
    "driver overhead, cold, outside step compute ((ms rest - direct rest) / direct wall)",
    `${(((cRest - dRest) / dWall) * 100).toFixed(1)}% (${cRest.toFixed(2)} s vs ${dRest.toFixed(2)} s)`,
    "< 5%",
  ]);
  const bRest = median(bareColds.map((r) => r.wall - r.own));
  summary.push([
    label,
    "  the same without the report (--no-report): the driver's own overhead",
    `${(((bRest - dRest) / dWall) * 100).toFixed(1)}% (${bRest.toFixed(2)} s vs ${dRest.toFixed(2)} s)`,
    "< 5%",
  ]);
  summary.push([label, "  the report (test-set scores and charts) after the last step", `${(cRest - bRest).toFixed(2)} s`, ""]);
}

async function benchSource(label, source, coldRepeats) {
  const cold = await coldRuns(label, source, coldRepeats);
  const warm = await warmRuns(label, source, cold.cache, cold.mlruns);
  const runs = { ...cold, ...warm };
  addRows(label, runs);
  addSummary(label, runs);
}

const starts = [];
for (let i = 0; i < 5; i++) starts.push((await timed(process.execPath, ["-e", "0"])).seconds);
const nodeStart = median(starts);

if (ONLY !== "synthetic") {
  if (!existsSync(path.join(ML_SMALL, "ratings.csv"))) throw new Error(`no ml-latest-small at ${ML_SMALL} (set MS_MOVIELENS_SMALL)`);
  const name = path.basename(ML_SMALL);
  const dataDir = path.dirname(ML_SMALL);
  await benchSource(
    name,
    { driver: ["--dataset", name, "--data-dir", dataDir], direct: ["--dataset", name, dataDir] },
    Number(process.env.MS_BENCH_DRIVER_COLD_REPEATS ?? 3),
  );
}
if (ONLY !== "small") {
  const csv = await syntheticRatingsCsv(ROWS);
  const label = `synthetic ${(ROWS / 1e6).toFixed(ROWS % 1e6 ? 1 : 0)}M rows (${(statSync(csv).size / 2 ** 20).toFixed(0)} MiB csv)`;
  await benchSource(
    label,
    { driver: ["--ratings-csv", csv], direct: ["--ratings-csv", csv] },
    Number(process.env.MS_BENCH_DRIVER_COLD_REPEATS ?? 2),
  );
}

const header = ["data", "mode", "wall s", "peak RSS MiB", "download s", "etl s", "als s", "keras s"];
const out = [
  `# ms driver benchmark`,
  ``,
  `${machine()}; commit ${gitCommit()}; node -e 0 takes ${nodeStart.toFixed(3)} s here.`,
  `Parameters: ${Object.entries(P)
    .map(([k, v]) => `${k}=${v}`)
    .join(
      " ",
    )} (everything else default). Step seconds of ms runs are the driver's per-step wall time (cache check, lock, step, publish, tracking).`,
  ``,
  table(header, rows),
  ``,
  table(["data", "figure", "measured", "target"], summary),
  ``,
].join("\n");
process.stdout.write(out);
process.stderr.write(`written to ${writeResult("driver", out)}\n`);
