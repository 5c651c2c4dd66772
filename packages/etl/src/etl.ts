/**
 * The etl step (the seed's `etl_data`): a MovieLens ratings file in any of its formats becomes one
 * zstd Parquet file of userId INT32, movieId INT32, rating FLOAT, published with its manifest.
 */
import {
  assertReplaceableOutput,
  BadInputError,
  writeManifest,
  buildArtifactDir,
  defaultCacheDir,
  digestFileRemembered,
  silentLogger,
  type ArtifactRef,
  type Digest,
  type Manifest,
  type StepContext,
  type StepResult,
} from "@ms/contracts";
import { stat } from "node:fs/promises";
import path from "node:path";
import { cacheLayout } from "@ms/cache";
import { copyRatingsToParquet, RATINGS_FILE } from "./adapter.js";
import { countDataRows } from "./count.js";
import { columnsOf, detectFormat, parseColumnMapping, type RatingsFormat } from "./formats.js";
import type { EtlParams } from "./params.js";
import { ETL_VERSION } from "./version.js";

export interface EtlInputs {
  /** A ratings file: ratings.csv, ratings.dat or u.data. */
  ratingsCsv: string;
  /** Its digest when already known (from a dataset manifest); saves hashing it again. */
  ratingsDigest?: Digest;
  /** Where digests and clean byte scans of input files are remembered (default: `defaultCacheDir()`). */
  cacheDir?: string;
}

export interface EtlMetrics {
  [key: string]: number;
  rows: number;
  rows_read: number;
  /** Data rows in the source file: more than `rows_read` when `max_row_limit` left some out. */
  rows_in_source: number;
  duplicates_dropped: number;
  output_bytes: number;
  seconds: number;
}

export interface RatingsDetails {
  rows: number;
  schema: { name: string; type: string }[];
  compression: "zstd";
  source: { path: string; digest: Digest; format: RatingsFormat };
}

export type RatingsManifest = Manifest<EtlParams, EtlMetrics, RatingsDetails>;

export interface EtlOutputs {
  [name: string]: ArtifactRef<"ratings">;
  ratings: ArtifactRef<"ratings">;
}

/** Runs the etl step into `outDir` (created, or replacing an earlier ratings output); `params` are resolved (`resolveEtlParams`). */
export async function etl(
  inputs: EtlInputs,
  params: EtlParams,
  outDir: string,
  ctx: Partial<StepContext> = {},
): Promise<StepResult<EtlOutputs, EtlMetrics> & { manifest: RatingsManifest }> {
  const logger = ctx.logger ?? silentLogger();
  const source = path.resolve(inputs.ratingsCsv);
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "ratings");
  const info = await detectFormat(source, params.etl_format, parseColumnMapping(params.etl_columns));
  if (!columnsOf(info).includes("timestamp")) {
    const needs = params.etl_keep_timestamp ? "etl_keep_timestamp=true" : params.etl_dedupe === "latest" ? "etl_dedupe=latest" : undefined;
    if (needs) {
      throw new BadInputError(`has no timestamp column, which -P ${needs} needs (name it with -P etl_columns=timestamp=NAME)`, {
        file: source,
        line: 1,
      });
    }
  }
  logger.info(
    { source, format: info.format, maxRowLimit: params.max_row_limit, status: "converting to Parquet" },
    "etl: converting ratings to Parquet",
  );
  const started = performance.now();
  return buildArtifactDir(target, async (staging) => {
    const parquet = path.join(staging, RATINGS_FILE);
    // Hash the source while DuckDB converts it: hashing is I/O bound and DuckDB is CPU bound.
    const sourceDigest = inputs.ratingsDigest
      ? Promise.resolve(inputs.ratingsDigest)
      : digestFileRemembered(source, cacheLayout(inputs.cacheDir ?? defaultCacheDir()).digests).then((d) => d.digest);
    const onProgress = ctx.progress
      ? ({ percent, rows }: { percent: number; rows: number }) =>
          logger.info(
            { percent: Math.round(percent), rows, status: `${Math.round(percent)}% read` },
            `etl: ${Math.round(percent)}% read, about ${rows.toLocaleString("en-US")} rows`,
          )
      : undefined;
    const copied = await copyRatingsToParquet(source, info, parquet, {
      maxRowLimit: params.max_row_limit,
      keepTimestamp: params.etl_keep_timestamp,
      dedupe: params.etl_dedupe,
      outputName: target,
      cacheDir: inputs.cacheDir ?? defaultCacheDir(),
      ...(onProgress ? { onProgress } : {}),
    });
    if (copied.rowsWritten === 0) throw new BadInputError("no ratings rows (the file holds a header only)", { file: source });
    // The limit cut the read short: count what it left out, so the run can say "100,000 of 20,000,263".
    const limited = params.max_row_limit >= 0 && copied.rowsRead >= params.max_row_limit;
    const rowsInSource = limited ? await countDataRows(source, info.header) : copied.rowsRead;
    if (rowsInSource > copied.rowsRead) {
      logger.warn(
        { rows_read: copied.rowsRead, rows_in_source: rowsInSource, max_row_limit: params.max_row_limit },
        `etl: kept the first ${copied.rowsRead.toLocaleString("en-US")} of ${rowsInSource.toLocaleString("en-US")} ratings (max_row_limit); -P max_row_limit=-1 keeps all`,
      );
    }
    const metrics: EtlMetrics = {
      rows: copied.rowsWritten,
      rows_read: copied.rowsRead,
      rows_in_source: rowsInSource,
      duplicates_dropped: copied.duplicatesDropped,
      output_bytes: (await stat(parquet)).size,
      seconds: 0,
    };
    const details: RatingsDetails = {
      rows: copied.rowsWritten,
      schema: [...RATINGS_SCHEMA, ...(params.etl_keep_timestamp ? [{ name: "timestamp", type: "INT64" }] : [])],
      compression: "zstd",
      source: { path: source, digest: await sourceDigest, format: info.format },
    };
    metrics.seconds = (performance.now() - started) / 1000;
    const manifest = await writeManifest(staging, {
      kind: "ratings",
      files: [RATINGS_FILE],
      params,
      metrics,
      details,
      producedBy: { step: "etl", version: ETL_VERSION },
    });
    for (const [key, value] of Object.entries(metrics)) ctx.metrics?.metric(key, value);
    if (copied.duplicatesDropped > 0)
      logger.info({ duplicates: copied.duplicatesDropped }, "etl: dropped duplicate (user, movie) pairs, kept the latest");
    logger.info({ rows: copied.rowsWritten, seconds: Number(metrics.seconds.toFixed(2)) }, "etl: done");
    return { outputs: { ratings: { kind: "ratings", dir: target, digest: manifest.digest } }, metrics, manifest };
  });
}

/** The columns every ratings artifact has, in order. */
export const RATINGS_SCHEMA: readonly { name: string; type: string }[] = [
  { name: "userId", type: "INT32" },
  { name: "movieId", type: "INT32" },
  { name: "rating", type: "FLOAT" },
];
