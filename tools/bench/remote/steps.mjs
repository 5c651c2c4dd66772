#!/usr/bin/env node
/**
 * One measured run of the remote-cache benchmark (a child of bench.mjs, so every phase starts in a
 * fresh process): download -> etl -> als through @ms/driver's runPipeline on a ratings file, with
 * or without a remote cache; prints the pipeline report as one JSON document on stdout.
 *
 *   node steps.mjs <ratings.csv> <cacheDir> <trackingDir> [s3://BUCKET/PREFIX read|write|readwrite]
 */
import { PIPELINE, runPipeline } from "@ms/driver";

const [ratingsCsv, cacheDir, trackingUri, remoteCache, mode] = process.argv.slice(2);
if (!ratingsCsv || !cacheDir || !trackingUri) {
  process.stderr.write("usage: node steps.mjs <ratings.csv> <cacheDir> <trackingDir> [s3://BUCKET/PREFIX MODE]\n");
  process.exit(2);
}
const report = await runPipeline({
  ratingsCsv,
  cacheDir,
  trackingUri,
  steps: PIPELINE.slice(0, 3),
  params: { max_row_limit: "-1", als_max_iter: "10", als_rank: "12" },
  report: false,
  logArtifacts: "none",
  ...(remoteCache ? { remoteCache, remoteCacheMode: mode ?? "readwrite", remoteCacheRequired: true } : {}),
});
process.stdout.write(JSON.stringify(report) + "\n");
