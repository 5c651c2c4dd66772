#!/usr/bin/env node
/**
 * ETL benchmark: the whole `ms-etl` process (node start, validation, manifest, digests) against a
 * bare DuckDB `COPY (SELECT ...) TO ... (FORMAT parquet)` of the same file, alternated in the same
 * run; then the dedupe cost, and Parquet -> typed columns throughput. On 20M synthetic ratings
 * (MS_BENCH_ETL_ROWS to change) and on ml-latest-small.
 * Usage: pnpm build && node tools/bench/etl/bench.mjs
 */
import { rmSync } from "node:fs";
import { ROOT, WORK, ML_SMALL, timed, median, table, machine, gitCommit, writeResult, existsSync, path, fmt } from "../lib.mjs";

const etlBin = path.join(ROOT, "packages/etl/dist/bin.js");
const bare = path.join(path.dirname(new URL(import.meta.url).pathname), "bare-copy.mjs");
const { writeSyntheticRatings, readRatingsColumns } = await import("@ms/etl");

const rows = Number(process.env.MS_BENCH_ETL_ROWS ?? 20_000_000);
const rounds = Math.max(2, Number(process.env.MS_BENCH_ROUNDS ?? 4));
const synthetic = path.join(WORK, `synthetic-${rows}.csv`);
if (!existsSync(synthetic)) {
  const t = performance.now();
  writeSyntheticRatings(synthetic, { rows, seed: 42 });
  process.stderr.write(`generated ${rows} synthetic ratings in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
}

// A cache of our own, emptied per data set, so the first ms-etl run hashes the source and the
// later ones reuse its remembered digest (as every run after the first does for a user).
const digestCache = path.join(WORK, "etl-cache");
const env = { ...process.env, MS_CACHE_DIR: digestCache };

async function measure(label, csv) {
  rmSync(digestCache, { recursive: true, force: true });
  const out = path.join(WORK, "etl-out");
  const bareOut = path.join(WORK, "bare.parquet");
  const ours = [];
  const theirs = [];
  let last;
  for (let i = 0; i < rounds; i++) {
    rmSync(bareOut, { force: true });
    theirs.push(await timed(process.execPath, [bare, csv, bareOut]));
    rmSync(out, { recursive: true, force: true });
    last = await timed(
      process.execPath,
      [etlBin, "--ratings-csv", csv, "--out", out, "--max-row-limit", "-1", "--json", "--log-level", "warn"],
      { env },
    );
    ours.push(last);
  }
  const doc = JSON.parse(last.stdout);
  rmSync(out, { recursive: true, force: true });
  const dedupe = await timed(
    process.execPath,
    [etlBin, "--ratings-csv", csv, "--out", out, "--max-row-limit", "-1", "--etl-dedupe", "latest", "--json", "--log-level", "warn"],
    { env },
  );
  const readTimes = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const cols = await readRatingsColumns(out);
    readTimes.push((performance.now() - t) / 1000);
    if (cols.rows !== doc.metrics.rows) throw new Error("row count mismatch");
  }
  const n = doc.metrics.rows;
  const oursS = median(ours.slice(1).map((r) => r.seconds));
  const bareS = median(theirs.map((r) => r.seconds));
  const firstS = ours[0].seconds;
  return {
    label,
    n,
    oursS,
    bareS,
    ratio: oursS / bareS,
    firstS,
    firstRatio: firstS / theirs[0].seconds,
    rowsPerS: n / oursS,
    outMiB: doc.metrics.output_bytes / 2 ** 20,
    rss: Math.max(...ours.map((r) => r.rssMiB)),
    bareRss: Math.max(...theirs.map((r) => r.rssMiB)),
    dedupeS: dedupe.seconds,
    readRowsPerS: n / Math.min(...readTimes),
  };
}

const results = [await measure(`synthetic ${fmt(rows)}`, synthetic)];
const mlSmall = path.join(ML_SMALL, "ratings.csv");
if (existsSync(mlSmall)) results.push(await measure("ml-latest-small", mlSmall));
else process.stderr.write(`skipping ml-latest-small: ${mlSmall} not found (set MS_MOVIELENS_SMALL)\n`);

const header = [
  "data",
  "rows",
  "ms-etl s (median of runs 2..n)",
  "bare DuckDB COPY s (median)",
  "ratio (target <= 1.15)",
  "first ms-etl run s (hashes the source)",
  "first-run ratio",
  "rows/s",
  "Parquet MiB",
  "peak RSS MiB",
  "bare RSS MiB",
  "with --dedupe latest s",
  "Parquet -> typed columns rows/s",
];
const body = results.map((r) => [
  r.label,
  r.n,
  r.oursS,
  r.bareS,
  r.ratio,
  r.firstS,
  r.firstRatio,
  Math.round(r.rowsPerS),
  r.outMiB,
  r.rss,
  r.bareRss,
  r.dedupeS,
  Math.round(r.readRowsPerS),
]);
const md = [
  `# ETL benchmark`,
  "",
  `Command: \`pnpm build && node tools/bench/etl/bench.mjs\` (rounds: ${rounds}, alternated; whole processes timed).`,
  "The first ms-etl run hashes the source CSV (sha256, recorded in the manifest); later runs reuse the",
  "digest remembered for the unchanged file (device, inode, size, mtime, ctime), as any repeated run does.",
  "",
  table(header, body),
  "",
  `Machine: ${machine()}; commit ${gitCommit()}; ${new Date().toISOString()}`,
  "",
].join("\n");
process.stdout.write(md);
process.stderr.write(`written ${writeResult("etl", md)}\n`);
