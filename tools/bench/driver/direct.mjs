#!/usr/bin/env node
/**
 * The baseline for the driver benchmark: the four steps called as library functions in one
 * process, with no cache, no locks and no tracking. Prints { seconds: { step: s } } as JSON.
 * Usage: node direct.mjs <outDir> (--ratings-csv PATH | --dataset NAME --data-dir DIR) [JSON partial params]
 */
import { digestFile } from "@ms/contracts";
import path from "node:path";

const [outDir, mode, source, ...rest] = process.argv.slice(2);
let dataDir;
let paramsJson = rest[0];
if (mode === "--dataset") {
  dataDir = rest[0];
  paramsJson = rest[1];
}
const params = JSON.parse(paramsJson ?? "{}");
const seconds = {};
const t = () => performance.now();
let start = t();
const { loadRawData, etl, resolveEtlParams } = await import("@ms/etl");
const { als, resolveAlsParams } = await import("@ms/als");
const { keras, resolveKerasParams } = await import("@ms/keras");
const { fm, resolveFmParams } = await import("@ms/fm");
seconds.import = (t() - start) / 1000;

start = t();
let ratingsCsv;
let ratingsDigest;
if (mode === "--ratings-csv") {
  ratingsCsv = path.resolve(source);
  ratingsDigest = (await digestFile(ratingsCsv)).digest;
} else {
  const raw = await loadRawData({ dataset: source, dataDir, cacheDir: path.join(outDir, "download-cache") });
  ratingsCsv = raw.ratingsFile;
  ratingsDigest = raw.digest;
}
seconds.download = (t() - start) / 1000;

start = t();
const e = await etl({ ratingsCsv, ratingsDigest }, resolveEtlParams(params.etl), path.join(outDir, "etl"));
seconds.etl = (t() - start) / 1000;

start = t();
const a = await als({ ratings: e.outputs.ratings.dir }, resolveAlsParams(params.als), path.join(outDir, "als"));
seconds.als = (t() - start) / 1000;

start = t();
const f = await fm({ ratings: e.outputs.ratings.dir, factors: a.outputs.factors.dir }, resolveFmParams(params.fm), path.join(outDir, "fm"));
seconds.fm = (t() - start) / 1000;

start = t();
const k = await keras(
  { ratings: e.outputs.ratings.dir, factors: a.outputs.factors.dir, features: path.join(outDir, "fm") },
  resolveKerasParams(params.keras),
  path.join(outDir, "keras"),
);
seconds.keras = (t() - start) / 1000;

// The steps' own "seconds" metrics: compute time as each step measures it, to separate step noise from overhead.
const own = { etl: e.metrics.seconds, als: a.metrics.seconds, fm: f.metrics.seconds, keras: k.metrics.seconds };
process.stdout.write(
  JSON.stringify({ seconds, own, rows: e.metrics.rows, test_rmse: { als: a.metrics.test_rmse, keras: k.metrics.test_rmse } }) + "\n",
);
