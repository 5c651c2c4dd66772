/**
 * The etl step (the seed's `etl_data`): a MovieLens ratings file in any of its formats becomes one
 * zstd Parquet file of userId INT32, movieId INT32, rating FLOAT, published with its manifest; with
 * split=time or file also timestamp INT64 and the split's `split_key` FLOAT (split=file: the main
 * file's rows, then the test file's).
 */
import {
  assertReplaceableOutput,
  BadInputError,
  BadParameterError,
  KEYED_SPLITS,
  SPLIT_KEY_COLUMN,
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
import { rm, stat } from "node:fs/promises";
import path from "node:path";
import { cacheLayout } from "@ms/cache";
import { copyRatingsToParquet, RATINGS_FILE, writeFileSplit, writeTimeSplitKey, type CopyOptions } from "./adapter.js";
import { countDataRows } from "./count.js";
import { columnsOf, detectFormat, parseColumnMapping, type FormatInfo, type RatingsFormat } from "./formats.js";
import type { EtlParams } from "./params.js";
import { ETL_VERSION } from "./version.js";

export interface EtlInputs {
  /** A ratings file: ratings.csv, ratings.dat or u.data. */
  ratingsCsv: string;
  /** Its digest when already known (from a dataset manifest); saves hashing it again. */
  ratingsDigest?: Digest;
  /** Where digests and clean byte scans of input files are remembered (default: `defaultCacheDir()`). */
  cacheDir?: string;
  /** With split=file: the ratings file whose every row tests (any format etl reads). */
  testRatings?: string;
}

export interface EtlMetrics {
  /** Also `test_file_rows` with split=file: the rows of the test file (the last rows of the output). */
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
  /** With split=file: the test file (its rows have split_key 1). */
  test?: { path: string; digest: Digest; format: RatingsFormat; rows: number };
}

export type RatingsManifest = Manifest<EtlParams, EtlMetrics, RatingsDetails>;

export interface EtlOutputs {
  [name: string]: ArtifactRef<"ratings">;
  ratings: ArtifactRef<"ratings">;
}

/** A file without timestamps, when a parameter needs them: refused, naming the parameter. */
function refuseMissingTimestamps(info: FormatInfo, params: EtlParams, file: string): void {
  if (columnsOf(info).includes("timestamp")) return;
  const needs =
    params.etl_keep_timestamp === "true"
      ? "etl_keep_timestamp=true"
      : params.etl_dedupe === "latest"
        ? "etl_dedupe=latest"
        : params.split === "time"
          ? "split=time"
          : undefined;
  if (needs)
    throw new BadInputError(`has no timestamp column, which -P ${needs} needs (name it with -P etl_columns=timestamp=NAME)`, {
      file,
      line: 1,
    });
}

/** The time split ranks by time; auto keeps timestamps when every file read has them (the fm step's time features read them). */
function keepsTimestamp(params: EtlParams, info: FormatInfo, testInfo: FormatInfo | undefined): boolean {
  const timed = (i: FormatInfo | undefined) => i !== undefined && columnsOf(i).includes("timestamp");
  if (params.etl_keep_timestamp === "true" || params.split === "time") return true;
  return params.etl_keep_timestamp === "auto" && timed(info) && (params.split !== "file" || timed(testInfo));
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
  const testFile = params.split === "file" && inputs.testRatings ? path.resolve(inputs.testRatings) : undefined;
  const testInfo = testFile ? await detectFormat(testFile, undefined, parseColumnMapping(params.etl_columns)) : undefined;
  refuseMissingTimestamps(info, params, source);
  if (testFile && testInfo) refuseMissingTimestamps(testInfo, params, testFile);
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
    const keyed = KEYED_SPLITS.includes(params.split);
    const copyOptions = {
      maxRowLimit: params.max_row_limit,
      keepTimestamp: keepsTimestamp(params, info, testInfo),
      dedupe: params.etl_dedupe,
      outputName: target,
      cacheDir: inputs.cacheDir ?? defaultCacheDir(),
      ...(onProgress ? { onProgress } : {}),
    };
    const base = keyed ? path.join(staging, "ratings.main.parquet") : parquet;
    const copied = await copyRatingsToParquet(source, info, base, copyOptions);
    const test = keyed
      ? await writeSplitKey(base, parquet, params, testFile && testInfo ? { file: testFile, info: testInfo } : undefined, copyOptions)
      : undefined;
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
      rows: copied.rowsWritten + (test?.rows ?? 0),
      rows_read: copied.rowsRead,
      rows_in_source: rowsInSource,
      duplicates_dropped: copied.duplicatesDropped + (test?.duplicatesDropped ?? 0),
      ...(test ? { test_file_rows: test.rows } : {}),
      output_bytes: (await stat(parquet)).size,
      seconds: 0,
    };
    const details: RatingsDetails = {
      rows: metrics.rows,
      schema: [
        ...RATINGS_SCHEMA,
        ...(copyOptions.keepTimestamp ? [{ name: "timestamp", type: "INT64" }] : []),
        ...(keyed ? [{ name: SPLIT_KEY_COLUMN, type: "FLOAT" }] : []),
      ],
      compression: "zstd",
      source: { path: source, digest: await sourceDigest, format: info.format },
      ...(test ? { test: test.details } : {}),
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
    logger.info({ rows: metrics.rows, seconds: Number(metrics.seconds.toFixed(2)) }, "etl: done");
    return { outputs: { ratings: { kind: "ratings", dir: target, digest: manifest.digest } }, metrics, manifest };
  });
}

/**
 * Writes `target` from the main file's Parquet `base` with the keyed split's `split_key` column
 * (see @ms/contracts' split.ts), and removes `base`. split=file reads the test file with the same
 * reader and checks as the main file (its errors name it), whole (max_row_limit is the main
 * file's), deduplicated on its own with etl_dedupe.
 */
async function writeSplitKey(
  base: string,
  target: string,
  params: EtlParams,
  testRatings: { file: string; info: FormatInfo } | undefined,
  options: CopyOptions,
): Promise<{ rows: number; duplicatesDropped: number; details: NonNullable<RatingsDetails["test"]> } | undefined> {
  try {
    if (params.split === "time") {
      await writeTimeSplitKey(base, target);
      return undefined;
    }
    if (!testRatings) throw new BadParameterError("test_ratings", "is needed with split=file (--test-ratings PATH)");
    const { file, info } = testRatings;
    const parquet = path.join(path.dirname(base), "ratings.test.parquet");
    const digest = digestFileRemembered(file, cacheLayout(options.cacheDir ?? defaultCacheDir()).digests);
    try {
      const copied = await copyRatingsToParquet(file, info, parquet, { ...options, maxRowLimit: -1 });
      if (copied.rowsWritten === 0) throw new BadInputError("no test ratings rows (the file holds a header only)", { file });
      await writeFileSplit(base, { parquet, file, info }, target, options.keepTimestamp);
      const details = { path: file, digest: (await digest).digest, format: info.format, rows: copied.rowsWritten };
      return { rows: copied.rowsWritten, duplicatesDropped: copied.duplicatesDropped, details };
    } finally {
      await rm(parquet, { force: true });
    }
  } finally {
    await rm(base, { force: true });
  }
}

/** The columns every ratings artifact has, in order. */
export const RATINGS_SCHEMA: readonly { name: string; type: string }[] = [
  { name: "userId", type: "INT32" },
  { name: "movieId", type: "INT32" },
  { name: "rating", type: "FLOAT" },
];
