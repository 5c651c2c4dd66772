/**
 * The download and etl steps as declared definitions for the driver. The download step's output
 * is a small "raw-dataset" record naming the ratings file where it lies (a mirror, the download
 * cache, generated data, or the user's own file) with its content digest; the etl step reads that
 * record through this module, never by guessing file names.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { cacheLayout } from "@ms/cache";
import * as v from "valibot";
import {
  BadInputError,
  BadParameterError,
  buildArtifactDir,
  DigestSchema,
  defaultCacheDir,
  defineStep,
  metricsText,
  NetworkError,
  digestFileRemembered,
  fileIdentity,
  readManifest,
  writeManifest,
  asStorageError,
  type Digest,
} from "@ms/contracts";
import { cleanPartialDownloads, loadRawData, type RawDataset } from "./datasets.js";
import { etl } from "./etl.js";
import type { RatingsFormat } from "./formats.js";
import { checkDownloadParams, checkEtlParams, downloadParams, etlParams, type DownloadParams } from "./params.js";
import { ETL_VERSION } from "./version.js";

/** The small file a raw-dataset artifact holds: only what names the content, so equal ratings give equal digests. */
export const SOURCE_FILE = "source.json";

/** What a raw-dataset artifact records about its ratings file (in the manifest's details). */
export interface RawDatasetDetails {
  name: string;
  /** Absolute path; the file stays where it is. */
  ratingsFile: string;
  format?: RatingsFormat;
  /** Content digest of the ratings file. */
  digest: Digest;
  source: RawDataset["source"] | "file";
  /** Device, inode, size, mtime and ctime (ns) when it was hashed: a changed file is noticed. */
  identity: string;
  /** With split=file: the test ratings file, recorded like the main one. */
  testRatings?: { file: string; digest: Digest; identity: string };
}

async function identityOf(file: string): Promise<string | undefined> {
  const id = await fileIdentity(file).catch(() => undefined);
  return id?.isFile ? id.identity : undefined;
}

/** A ratings file the user named: it must be a regular file (a directory or FIFO is refused). */
async function userRatingsFile(file: string, cacheDir: string | undefined): Promise<{ digest: Digest }> {
  const st = await fs.stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new BadInputError(error.code === "ENOENT" ? "no such file" : `cannot read the ratings file (${error.code ?? error.message})`, {
      file,
    });
  });
  if (!st.isFile())
    throw new BadInputError(
      `is ${st.isDirectory() ? "a directory" : "not a regular file"}; give a ratings file (ratings.csv, ratings.dat or u.data)`,
      { file },
    );
  return digestFileRemembered(file, cacheLayout(cacheDir ?? defaultCacheDir()).digests);
}

/** Writes a raw-dataset artifact at `outDir`. */
export async function writeRawDataset(
  outDir: string,
  record: Omit<RawDatasetDetails, "identity">,
  params: DownloadParams,
): Promise<{ bytes: number }> {
  const identity = await identityOf(record.ratingsFile);
  if (!identity) throw new BadInputError("vanished after it was hashed", { file: record.ratingsFile });
  const bytes = Number(identity.split(":")[2]);
  const test = record.testRatings;
  if (test && (await identityOf(test.file)) !== test.identity) throw new BadInputError("changed after it was hashed", { file: test.file });
  return buildArtifactDir(outDir, async (staging) => {
    const file = path.join(staging, SOURCE_FILE);
    try {
      // The test file's digest is part of what names the content: another test file is another dataset.
      const named = { format: record.format ?? null, digest: record.digest, ...(test ? { testDigest: test.digest } : {}) };
      await fs.writeFile(file, JSON.stringify(named) + "\n");
    } catch (error) {
      throw asStorageError(error, file);
    }
    const details: RawDatasetDetails = { ...record, identity };
    await writeManifest(staging, {
      kind: "raw-dataset",
      files: [SOURCE_FILE],
      params,
      metrics: { bytes },
      details,
      producedBy: { step: "download", version: ETL_VERSION },
    });
    return { bytes };
  });
}

const TestRatingsRecord = v.object({ file: v.string(), digest: DigestSchema, identity: v.string() });

function isRawDatasetDetails(d: Record<string, unknown>): d is Record<string, unknown> & RawDatasetDetails {
  return (
    typeof d.ratingsFile === "string" &&
    typeof d.digest === "string" &&
    typeof d.identity === "string" &&
    (d.testRatings === undefined || v.is(TestRatingsRecord, d.testRatings))
  );
}

/** Reads a raw-dataset artifact. */
export async function readRawDataset(dir: string): Promise<RawDatasetDetails> {
  const manifest = await readManifest(dir, "raw-dataset");
  if (!isRawDatasetDetails(manifest.details))
    throw new BadInputError("not a raw-dataset record (no ratingsFile, digest or identity)", { file: path.join(dir, "manifest.json") });
  return manifest.details;
}

/** The seed's `load_raw_data`: finds (or downloads, or generates) the ratings file. */
export const downloadStep = defineStep({
  name: "download",
  entryPoint: "load_raw_data",
  code: { package: "@ms/etl", version: ETL_VERSION },
  params: downloadParams,
  resolve: checkDownloadParams,
  inputs: {},
  outputs: { ratings: "raw-dataset" },
  // Its entry names a file on this machine (and that file's identity): another machine cannot use it.
  shareable: false,
  // An archive whose download was killed stays as a partial file until this removes it.
  cleaner: { name: "downloads", what: "partial downloads", clean: (cacheRoot, { dryRun }) => cleanPartialDownloads(cacheRoot, { dryRun }) },
  async run(ctx, _inputs, params, outDir) {
    const cacheDir = ctx.cacheDir ?? defaultCacheDir();
    let record: Omit<RawDatasetDetails, "identity">;
    if (params.ratings_csv) {
      const { digest } = await userRatingsFile(params.ratings_csv, cacheDir);
      record = { name: path.basename(params.ratings_csv), ratingsFile: params.ratings_csv, digest, source: "file" };
    } else {
      const source = params.url ? { url: params.url } : params.data_dir ? { dataDir: params.data_dir } : {};
      record = await loadRawData(
        {
          dataset: params.dataset,
          cacheDir,
          ...source,
          rows: params.synthetic_rows,
          seed: params.synthetic_seed,
          kind: params.synthetic_kind,
        },
        ctx,
      ).catch((error: unknown) => {
        // loadRawData suggests the way out only for the failures it recognises as offline.
        if (error instanceof NetworkError && !error.message.includes("--dataset synthetic")) {
          throw new NetworkError(`${error.message}; offline? use a local mirror (--data-dir / MS_DATASETS_DIR) or --dataset synthetic`, {
            cause: error,
          });
        }
        throw error;
      });
    }
    if (params.test_ratings) {
      const { digest } = await userRatingsFile(params.test_ratings, cacheDir);
      const identity = await identityOf(params.test_ratings);
      if (!identity) throw new BadInputError("vanished after it was hashed", { file: params.test_ratings });
      record = { ...record, testRatings: { file: params.test_ratings, digest, identity } };
    }
    const { bytes } = await writeRawDataset(outDir, record, params);
    ctx.metrics?.metric("bytes", bytes);
  },
  async stillValid(manifest) {
    if (!isRawDatasetDetails(manifest.details)) return false;
    const test = manifest.details.testRatings;
    if (test && (await identityOf(test.file)) !== test.identity) return false;
    return (await identityOf(manifest.details.ratingsFile)) === manifest.details.identity;
  },
  describe(manifest) {
    if (!isRawDatasetDetails(manifest.details)) return {};
    const d = manifest.details;
    return {
      file: d.ratingsFile,
      source: d.source,
      ...(d.format ? { format: d.format } : {}),
      ...(d.testRatings ? { test: d.testRatings.file } : {}),
    };
  },
  headline: (metrics, outputs) => `source=${String(outputs.ratings?.source ?? "?")} ${metricsText(metrics, ["bytes"])}`,
});

/** The seed's `etl_data`: ratings -> one zstd Parquet file, validated in the same pass. */
export const etlStep = defineStep({
  name: "etl",
  entryPoint: "etl_data",
  code: { package: "@ms/etl", version: ETL_VERSION },
  params: etlParams,
  resolve: checkEtlParams,
  inputs: { ratings: "raw-dataset" },
  outputs: { ratings: "ratings" },
  headline: (metrics) => {
    const { rows_read: read, rows_in_source: all } = metrics;
    const cut =
      typeof read === "number" && typeof all === "number" && all > read
        ? ` (the first ${read} of ${all} ratings: max_row_limit; -P max_row_limit=-1 keeps all)`
        : "";
    return metricsText(metrics, ["rows", "duplicates_dropped"]) + cut;
  },
  async run(ctx, inputs, params, outDir) {
    const raw = await readRawDataset(inputs.ratings.dir);
    if (params.split === "file" && !raw.testRatings)
      throw new BadParameterError(
        "test_ratings",
        "split=file needs a test ratings file (--test-ratings PATH), and the download step recorded none",
      );
    await etl(
      {
        ratingsCsv: raw.ratingsFile,
        ratingsDigest: raw.digest,
        ...(raw.testRatings ? { testRatings: raw.testRatings.file } : {}),
        ...(ctx.cacheDir ? { cacheDir: ctx.cacheDir } : {}),
      },
      params,
      outDir,
      ctx,
    );
  },
});
