#!/usr/bin/env node
/**
 * Cache-hit check on large entries (after `pnpm build`): `node tools/bench/hits/bench.mjs` or
 * `pnpm bench hits`. A fully cached `ms run` verifies every entry it serves; on 20M-row data the
 * etl entry (the ratings Parquet) and the als entry (the factor tables) are where re-hashing every
 * hit would cost most. This builds those two entries the way the pipeline does (ms-etl, then
 * ms-als with 1 iteration: the entry's size, not the fit, matters here), then times the hit
 * check, alternated: with the file-identity memo (only `stat` per file) and re-hashing every file
 * (MS_CACHE_REHASH=1's behaviour). Environment: MS_BENCH_HITS_ROWS (default 20,000,000),
 * MS_BENCH_HITS_REPEATS (default 7).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { ROOT, WORK, median, table, machine, gitCommit, writeResult } from "../lib.mjs";

const ROWS = Number(process.env.MS_BENCH_HITS_ROWS ?? 20_000_000);
const REPEATS = Number(process.env.MS_BENCH_HITS_REPEATS ?? 7);
const BASE = path.join(WORK, "hits");
mkdirSync(BASE, { recursive: true });
const { verifyArtifact } = await import(path.join(ROOT, "packages/contracts/dist/index.js"));

const csv = path.join(BASE, `synthetic-${ROWS}.csv`);
if (!existsSync(csv)) {
  const { writeSyntheticRatings } = await import(path.join(ROOT, "packages/etl/dist/index.js"));
  process.stderr.write(`generating ${ROWS.toLocaleString("en-US")} synthetic ratings\n`);
  writeSyntheticRatings(csv, { rows: ROWS, seed: 42 });
}
const etlDir = path.join(BASE, `etl-${ROWS}`);
const alsDir = path.join(BASE, `als-${ROWS}`);
const env = { ...process.env, LOG_LEVEL: "warn", MS_CACHE_DIR: path.join(BASE, "cache") };
if (!existsSync(path.join(etlDir, "manifest.json")))
  execFileSync(
    process.execPath,
    [path.join(ROOT, "packages/etl/dist/bin.js"), "--ratings-csv", csv, "--out", etlDir, "--max-row-limit", "-1"],
    { env, stdio: ["ignore", "ignore", "inherit"] },
  );
if (!existsSync(path.join(alsDir, "manifest.json")))
  execFileSync(
    process.execPath,
    [path.join(ROOT, "packages/als/dist/bin.js"), "--ratings", etlDir, "--out", alsDir, "--als-max-iter", "1"],
    { env, stdio: ["ignore", "ignore", "inherit"] },
  );

const rows = [];
for (const [label, dir, kind] of [
  ["etl entry (ratings.parquet)", etlDir, "ratings"],
  ["als entry (user + item factors)", alsDir, "factors"],
]) {
  // A file written within the last second is hashed but not remembered (racy timestamps), as in a real cache.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const first = await verifyArtifact(dir, { kind, memo: {} });
  if (!first.ok) throw new Error(`${dir}: ${first.problems.join("; ")}`);
  const memo = first.memo;
  const bytes = first.manifest.files.reduce((s, f) => s + f.bytes, 0);
  const withMemo = [];
  const rehash = [];
  for (let i = 0; i < REPEATS; i++) {
    let t = performance.now();
    const a = await verifyArtifact(dir, { kind, memo });
    withMemo.push(performance.now() - t);
    if (!a.ok || a.hashed !== 0) throw new Error("the memo did not hold");
    t = performance.now();
    const b = await verifyArtifact(dir, { kind, deep: true });
    rehash.push(performance.now() - t);
    if (!b.ok) throw new Error("re-hash failed");
  }
  const m = median(withMemo);
  const r = median(rehash);
  rows.push([label, `${(bytes / 2 ** 20).toFixed(0)} MiB`, m, r, `${(r / m).toFixed(0)}x`]);
}
const out = [
  "# Cache-hit check on 20M-row entries",
  "",
  `${machine()}; commit ${gitCommit()}; ${ROWS.toLocaleString("en-US")} synthetic ratings (${(statSync(csv).size / 2 ** 20).toFixed(0)} MiB csv); median of ${REPEATS}, alternated.`,
  "",
  table(["entry", "files", "hit check with identity memo, ms", "re-hashing every file, ms", "re-hash / memo"], rows),
  "",
].join("\n");
process.stdout.write(out);
process.stderr.write(`written to ${writeResult("hits", out)}\n`);
