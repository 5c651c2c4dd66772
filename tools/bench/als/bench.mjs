#!/usr/bin/env node
/**
 * ALS benchmark (run after `pnpm build`):
 *   node tools/bench/als/bench.mjs            # (a) 5M synthetic, (b) ml-20m-shaped, (c) ml-latest-small
 *   ALS_BENCH_SKIP_20M=1 node tools/bench/als/bench.mjs   # skip (b)
 * Environment: ALS_BENCH_ONLY=a,c picks cases; MS_MOVIELENS_SMALL points at ml-latest-small's directory;
 * ALS_BENCH_BIN=path/to/bin.js benchmarks another build of ms-als (to compare before/after a change).
 *
 * Side by side in the same run: the whole `ms-als` process (spawned: start, read, split, fit,
 * write) against a plain single-threaded ALS-WR written the obvious way (rows looked up through
 * Maps, normal equations + Cholesky on Float64Array), timing the plain one's fit alone. Both use
 * the shared train/test split; test RMSE drops cold-start rows in both. Also prints the
 * arithmetic rate: FLOPs of one sweep (2*nnz*k^2 + (users+movies)*k^3/3) / time per iteration.
 * Generated data is cached in tools/bench/work/als (gitignored).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { splitMask } from "@ms/contracts";
import { ML_SMALL } from "../lib.mjs";
import { etl, readRatingsColumns, writeSyntheticRatings, resolveEtlParams } from "@ms/etl";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const work = path.join(repo, "tools/bench/work/als");
// ALS_BENCH_BIN runs another build of the bin (e.g. a copy of dist/ from before a change).
const BIN = process.env.ALS_BENCH_BIN ? path.resolve(process.env.ALS_BENCH_BIN) : path.join(repo, "packages/als/dist/bin.js");
const SMALL = path.join(ML_SMALL, "ratings.csv");
const only = process.env.ALS_BENCH_ONLY?.split(",");
const want = (c) => (!only || only.includes(c)) && !(c === "b" && process.env.ALS_BENCH_SKIP_20M === "1");
const RANK = 12;
const ITERS = 10;
const REG = 0.1;
const SEED = 42;
const SPLIT = 0.8;

if (!existsSync(BIN)) {
  console.error(`${BIN} is missing: run \`pnpm build\` first`);
  process.exit(2);
}
mkdirSync(work, { recursive: true });

const log = (msg) => process.stderr.write(`[als-bench] ${msg}\n`);

/** A cached etl artifact of synthetic ratings (generated once, then reused). */
async function syntheticDir(name, shape) {
  const dir = path.join(work, name);
  if (existsSync(path.join(dir, "manifest.json"))) return dir;
  const csv = `${dir}.csv`;
  log(`generating ${name} (${shape.rows} ratings, ${shape.users} users, ${shape.movies} movies)...`);
  writeSyntheticRatings(csv, { ...shape, seed: SEED });
  await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), dir);
  rmSync(csv);
  return dir;
}

async function smallDir() {
  if (!existsSync(SMALL)) return undefined;
  const dir = path.join(work, "ml-latest-small");
  if (!existsSync(path.join(dir, "manifest.json"))) await etl({ ratingsCsv: SMALL }, resolveEtlParams({ max_row_limit: -1 }), dir);
  return dir;
}

/** Runs `ms-als` under /usr/bin/time -v: wall seconds, peak RSS and the --json document. */
function runMsAls(ratingsDir, out) {
  const args = [
    BIN,
    "--ratings",
    ratingsDir,
    "--out",
    out,
    "--json",
    "--als-rank",
    String(RANK),
    "--als-max-iter",
    String(ITERS),
    "--als-reg-param",
    String(REG),
    "--seed",
    String(SEED),
    "--split-prop",
    String(SPLIT),
    "--log-level",
    "warn",
  ];
  const timeBin = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;
  const [cmd, argv] = timeBin ? [timeBin, ["-v", process.execPath, ...args]] : [process.execPath, args];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`ms-als exited ${code}: ${stderr.slice(-2000)}`));
      const rssKb = Number(stderr.match(/Maximum resident set size \(kbytes\): (\d+)/)?.[1] ?? NaN);
      const cpu =
        Number(stderr.match(/User time \(seconds\): ([\d.]+)/)?.[1] ?? NaN) +
        Number(stderr.match(/System time \(seconds\): ([\d.]+)/)?.[1] ?? NaN);
      resolve({ wall, cpu, rssMb: rssKb / 1024, doc: JSON.parse(stdout) });
    });
  });
}

/**
 * The random stream of the initial factors. By default the same stream @ms/als uses (mulberry32
 * seeded through a murmur3 finaliser, users with salt 1 and movies with salt 2, rows in id order),
 * so both start from identical factors and an RMSE difference measures the implementation, not
 * the luck of the draw. ALS_BENCH_PLAIN_INIT=independent gives the baseline its own stream.
 */
const SAME_INIT = process.env.ALS_BENCH_PLAIN_INIT !== "independent";
function seeded(seed, salt) {
  let a = seed >>> 0;
  if (SAME_INIT) {
    let h = Math.imul((seed | 0) ^ Math.imul(salt, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    a = (h ^ (h >>> 16)) >>> 0;
  } else {
    a = (seed + salt * 7919) >>> 0;
  }
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The plain baseline: ALS-WR exactly as one would first write it. Rows in Maps of arrays,
 * factors in a Map of Float64Arrays, a fresh normal-equation matrix per row, full k x k
 * accumulation, Cholesky. Returns the fit time alone and the test RMSE (cold rows dropped).
 */
function plainAls(cols, mask) {
  const k = RANK;
  const byUser = new Map();
  const byItem = new Map();
  for (let i = 0; i < cols.rows; i++) {
    if (!mask[i]) continue;
    const u = cols.userIds[i];
    const m = cols.movieIds[i];
    const r = cols.ratings[i];
    if (!byUser.has(u)) byUser.set(u, { ids: [], r: [] });
    if (!byItem.has(m)) byItem.set(m, { ids: [], r: [] });
    byUser.get(u).ids.push(m);
    byUser.get(u).r.push(r);
    byItem.get(m).ids.push(u);
    byItem.get(m).r.push(r);
  }
  const init = (rows, salt) => {
    const next = seeded(SEED, salt);
    const f = new Map();
    for (const id of [...rows.keys()].sort((a, b) => a - b)) {
      const v = new Float64Array(k);
      let n = 0;
      for (let j = 0; j < k; j++) {
        v[j] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
        n += v[j] * v[j];
      }
      for (let j = 0; j < k; j++) v[j] /= Math.sqrt(n);
      f.set(id, v);
    }
    return f;
  };
  const U = init(byUser, 1);
  const V = init(byItem, 2);
  const solveSide = (rows, out, other) => {
    for (const [id, row] of rows) {
      const A = new Float64Array(k * k);
      const b = new Float64Array(k);
      for (let p = 0; p < row.ids.length; p++) {
        const y = other.get(row.ids[p]);
        const r = row.r[p];
        for (let a = 0; a < k; a++) {
          b[a] += r * y[a];
          for (let c = 0; c < k; c++) A[a * k + c] += y[a] * y[c];
        }
      }
      for (let a = 0; a < k; a++) A[a * k + a] += REG * row.ids.length;
      // Cholesky A = L L^T, then two triangular solves.
      const L = new Float64Array(k * k);
      for (let i = 0; i < k; i++) {
        for (let j = 0; j <= i; j++) {
          let s = A[i * k + j];
          for (let m = 0; m < j; m++) s -= L[i * k + m] * L[j * k + m];
          L[i * k + j] = i === j ? Math.sqrt(s) : s / L[j * k + j];
        }
      }
      const z = new Float64Array(k);
      for (let i = 0; i < k; i++) {
        let s = b[i];
        for (let m = 0; m < i; m++) s -= L[i * k + m] * z[m];
        z[i] = s / L[i * k + i];
      }
      const x = new Float64Array(k);
      for (let i = k - 1; i >= 0; i--) {
        let s = z[i];
        for (let m = i + 1; m < k; m++) s -= L[m * k + i] * x[m];
        x[i] = s / L[i * k + i];
      }
      out.set(id, x);
    }
  };
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  for (let iter = 0; iter < ITERS; iter++) {
    solveSide(byItem, V, U);
    solveSide(byUser, U, V);
  }
  const fit = (performance.now() - started) / 1000;
  const cpuUsed = process.cpuUsage(cpuStarted);
  const cpu = (cpuUsed.user + cpuUsed.system) / 1e6;
  let sse = 0;
  let n = 0;
  for (let i = 0; i < cols.rows; i++) {
    if (mask[i]) continue;
    const x = U.get(cols.userIds[i]);
    const y = V.get(cols.movieIds[i]);
    if (!x || !y) continue;
    let p = 0;
    for (let j = 0; j < k; j++) p += x[j] * y[j];
    sse += (p - cols.ratings[i]) ** 2;
    n++;
  }
  return { fit, cpu, testRmse: Math.sqrt(sse / n) };
}

function sweepFlops(nnz, users, movies, k = RANK) {
  return 2 * nnz * k * k + ((users + movies) * k ** 3) / 3;
}

async function msAlsBest(name, dir, reps) {
  const runs = [];
  for (let r = 0; r < reps; r++) {
    const out = path.join(work, `${name}-out`);
    log(`${name}: ms-als run ${r + 1}/${reps}...`);
    runs.push(await runMsAls(dir, out));
  }
  runs.sort((a, b) => a.wall - b.wall);
  const best = runs[0];
  const factors = JSON.parse(readFileSync(path.join(path.dirname(best.doc.outputs.factors.files[0]), "manifest.json"), "utf8"));
  return { ...best, runs, details: factors.details, peakRssMb: Math.max(...runs.map((r) => r.rssMb)) };
}

async function plainBest(name, dir, reps) {
  const cols = await readRatingsColumns(dir);
  const mask = splitMask(cols.userIds, cols.movieIds, SEED, SPLIT);
  const runs = [];
  for (let r = 0; r < reps; r++) {
    log(`${name}: plain ALS-WR run ${r + 1}/${reps}...`);
    runs.push(plainAls(cols, mask));
  }
  runs.sort((a, b) => a.fit - b.fit);
  return runs[0];
}

const results = [];
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

async function compareCase(label, name, dir, reps, targeted) {
  const ms = await msAlsBest(name, dir, reps);
  const plain = await plainBest(name, dir, reps);
  const m = ms.doc.metrics;
  const perIter = m.fit_seconds / ITERS;
  const flops = sweepFlops(m.training_nrows, ms.details.users, ms.details.items);
  results.push({
    label,
    msWall: ms.wall,
    msCpu: ms.cpu,
    plainCpu: plain.cpu,
    msFit: m.fit_seconds,
    perIter,
    rss: ms.peakRssMb,
    msRmse: m.test_rmse,
    plainFit: plain.fit,
    plainRmse: plain.testRmse,
    speedup: plain.fit / ms.wall,
    gflops: flops / perIter / 1e9,
    plainGflops: (flops * ITERS) / plain.fit / 1e9,
    flops,
    targeted,
  });
}

const t0 = performance.now();
if (want("a")) {
  const dir = await syntheticDir("synthetic-5m", { rows: 5_000_000, users: 35_000, movies: 27_000 });
  await compareCase("(a) 5M synthetic, 35k users x 27k movies", "a", dir, 2, true);
}
if (want("b")) {
  const dir = await syntheticDir("synthetic-20m", { rows: 20_000_000, users: 138_000, movies: 27_000 });
  const ms = await msAlsBest("b", dir, 1);
  const m = ms.doc.metrics;
  const perIter = m.fit_seconds / ITERS;
  const flops = sweepFlops(m.training_nrows, ms.details.users, ms.details.items);
  results.push({
    label: "(b) ml-20m-shaped, 138k users x 27k movies",
    msWall: ms.wall,
    msCpu: ms.cpu,
    msFit: m.fit_seconds,
    perIter,
    rss: ms.peakRssMb,
    msRmse: m.test_rmse,
    gflops: flops / perIter / 1e9,
    flops,
  });
}
if (want("c")) {
  const dir = await smallDir();
  if (dir) await compareCase("(c) ml-latest-small (real)", "c", dir, 2, false);
  else log(`skipping (c): ${SMALL} does not exist`);
}

console.log(
  `\nALS benchmark: rank ${RANK}, ${ITERS} iterations, reg ${REG}, split ${SPLIT}, seed ${SEED}; ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? "?"}), node ${process.version}`,
);
console.log(
  "ms-als = whole spawned process (start, read, split, fit, write), best of runs; plain = single-threaded Maps ALS-WR, fit only, best of runs",
);
console.log(`plain baseline init: ${SAME_INIT ? "same random factors as ms-als" : "its own random stream"}; same train/test split\n`);
const header = [
  "case",
  "ms-als s",
  "ms-als CPU s",
  "fit s",
  "s/iter",
  "peak RSS MB",
  "GFLOP/s",
  "test RMSE",
  "plain fit s",
  "plain GFLOP/s",
  "plain RMSE",
  "speed-up",
  "CPU-time ratio",
  "target",
];
const rows = results.map((r) => {
  const target =
    r.plainFit === undefined
      ? r.rss < 3072
        ? "RSS < 3 GB: ok"
        : "RSS >= 3 GB: FAIL"
      : !r.targeted
        ? `(no target) RMSE ${r.msRmse <= r.plainRmse + 0.002 ? "ok" : "worse"}`
        : `${r.speedup >= 10 ? "10x ok" : r.speedup >= 6 ? "6x ok (<10x)" : "<6x FAIL"}; RMSE ${r.msRmse <= r.plainRmse + 0.002 ? "ok" : "FAIL"}`;
  return [
    r.label,
    f(r.msWall),
    f(r.msCpu),
    f(r.msFit),
    f(r.perIter, 3),
    f(r.rss, 0),
    f(r.gflops),
    f(r.msRmse, 4),
    r.plainFit === undefined ? "-" : f(r.plainFit),
    r.plainGflops === undefined ? "-" : f(r.plainGflops),
    r.plainRmse === undefined ? "-" : f(r.plainRmse, 4),
    r.speedup === undefined ? "-" : `${f(r.speedup, 1)}x`,
    r.plainCpu === undefined ? "-" : `${f(r.plainCpu / r.msCpu, 1)}x`,
    target,
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log(
  `\nload average at the end: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")} (other processes share these cores; CPU-time ratio = plain fit CPU s / ms-als whole-process CPU s)`,
);
console.log(
  "GFLOP/s = FLOPs of one sweep (2*nnz_train*k^2 + (users+movies)*k^3/3) / time per iteration; speed-up = plain fit / ms-als whole process.",
);
for (const r of results) console.log(`  ${r.label}: ${f(r.flops / 1e9, 3)} GFLOP per sweep`);
log(`done in ${f((performance.now() - t0) / 1000, 0)} s`);
