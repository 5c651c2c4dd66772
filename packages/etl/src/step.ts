/**
 * The download and etl steps as declared definitions for the driver. The download step's output
 * is a small "raw-dataset" record naming the ratings file where it lies (a mirror, the download
 * cache, generated data, or the user's own file) with its content digest; the etl step reads that
 * record through this module, never by guessing file names.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { cacheLayout } from "@ms/cache";
import {
  BadInputError,
  BadParameterError,
  buildArtifactDir,
  defaultCacheDir,
  defineStep,
  NetworkError,
  digestFileRemembered,
  fileIdentity,
  param,
  readManifest,
  writeManifest,
  asStorageError,
  type Digest,
  type ParamDefs,
} from "@ms/contracts";
import { DATASET_NAMES, cleanPartialDownloads, loadRawData, type RawDataset } from "./datasets.js";
import { etl, ETL_DEFAULTS, resolveEtlParams, type EtlParams } from "./etl.js";
import { RATINGS_FORMATS, type RatingsFormat } from "./formats.js";
import { SYNTHETIC_DEFAULTS } from "./synthetic.js";
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
}

export interface DownloadParams {
  dataset: string;
  /** A ratings file of the user's instead of a dataset. */
  ratingsCsv?: string;
  /** A mirror holding `<dataset>/ratings.csv` (the driver passes `MS_DATASETS_DIR` here). */
  dataDir?: string;
  /** Any MovieLens-layout zip to download instead of a dataset. */
  url?: string;
  /** Synthetic data only. */
  rows: number;
  seed: number;
}

async function identityOf(file: string): Promise<string | undefined> {
  const id = await fileIdentity(file).catch(() => undefined);
  return id?.isFile ? id.identity : undefined;
}

/** A ratings file the user named: it must be a regular file (a directory or FIFO is refused). */
async function userRatingsFile(file: string, cacheDir: string | undefined): Promise<{ digest: Digest }> {
  const st = await fs.stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new BadInputError(`cannot read the ratings file (${error.code ?? error.message})`, { file });
  });
  if (!st.isFile()) throw new BadInputError(`is ${st.isDirectory() ? "a directory" : "not a regular file"}; give a ratings file (ratings.csv, ratings.dat or u.data)`, { file });
  return digestFileRemembered(file, cacheLayout(cacheDir ?? defaultCacheDir()).digests);
}

/** Writes a raw-dataset artifact at `outDir`. */
export async function writeRawDataset(outDir: string, record: Omit<RawDatasetDetails, "identity">, params: DownloadParams): Promise<{ bytes: number }> {
  const identity = await identityOf(record.ratingsFile);
  if (!identity) throw new BadInputError("vanished after it was hashed", { file: record.ratingsFile });
  const bytes = Number(identity.split(":")[2]);
  return buildArtifactDir(outDir, async (staging) => {
    const file = path.join(staging, SOURCE_FILE);
    try {
      await fs.writeFile(file, JSON.stringify({ format: record.format ?? null, digest: record.digest }) + "\n");
    } catch (error) {
      throw asStorageError(error, file);
    }
    const details: RawDatasetDetails = { ...record, identity };
    await writeManifest(staging, { kind: "raw-dataset", files: [SOURCE_FILE], params, metrics: { bytes }, details, producedBy: { step: "download", version: ETL_VERSION } });
    return { bytes };
  });
}

function isRawDatasetDetails(d: Record<string, unknown>): d is Record<string, unknown> & RawDatasetDetails {
  return typeof d.ratingsFile === "string" && typeof d.digest === "string" && typeof d.identity === "string";
}

/** Reads a raw-dataset artifact. */
export async function readRawDataset(dir: string): Promise<RawDatasetDetails> {
  const manifest = await readManifest(dir, "raw-dataset");
  if (!isRawDatasetDetails(manifest.details)) throw new BadInputError("not a raw-dataset record (no ratingsFile, digest or identity)", { file: path.join(dir, "manifest.json") });
  return manifest.details;
}

const downloadParams: ParamDefs<DownloadParams> = {
  dataset: param.string({ default: "ml-latest-small", name: "dataset", doc: `a MovieLens release or synthetic (${DATASET_NAMES.join(", ")})` }),
  ratingsCsv: param.path({ name: "ratings_csv", doc: "a local ratings file instead of a dataset (ratings.csv, ratings.dat or u.data)" }),
  dataDir: param.path({ name: "data_dir", doc: "a mirror holding <dataset>/ratings.csv (default $MS_DATASETS_DIR)" }),
  url: param.string({ name: "url", doc: "any MovieLens-layout zip to download instead of a dataset (checked against <url>.md5 when the server has one)" }),
  rows: param.integer({ default: SYNTHETIC_DEFAULTS.rows, name: "synthetic_rows", doc: "ratings to generate for --dataset synthetic" }),
  seed: param.integer({ default: SYNTHETIC_DEFAULTS.seed, name: "synthetic_seed", doc: "seed of the synthetic generator" }),
};

function resolveDownloadParams(partial: Partial<DownloadParams>): DownloadParams {
  const p: DownloadParams = { dataset: "ml-latest-small", rows: SYNTHETIC_DEFAULTS.rows, seed: SYNTHETIC_DEFAULTS.seed, ...partial };
  if (p.url && p.ratingsCsv) throw new BadParameterError("url", "give either url or ratings_csv, not both");
  if (!p.ratingsCsv && !p.url && !DATASET_NAMES.includes(p.dataset)) throw new BadParameterError("dataset", `unknown dataset "${p.dataset}"; known: ${DATASET_NAMES.join(", ")}`);
  if (!Number.isInteger(p.rows) || p.rows < 1) throw new BadParameterError("rows", `must be an integer >= 1, got ${p.rows}`);
  if (!Number.isInteger(p.seed)) throw new BadParameterError("seed", `must be an integer, got ${p.seed}`);
  return p;
}

/** The seed's `load_raw_data`: finds (or downloads, or generates) the ratings file. */
export const downloadStep = defineStep({
  name: "download",
  code: { package: "@ms/etl", version: ETL_VERSION },
  params: downloadParams,
  resolve: resolveDownloadParams,
  inputs: {},
  outputs: { ratings: "raw-dataset" },
  // Its entry names a file on this machine (and that file's identity): another machine cannot use it.
  shareable: false,
  // An archive whose download was killed stays as a partial file until this removes it.
  cleaner: { name: "downloads", what: "partial downloads", clean: (cacheRoot, { dryRun }) => cleanPartialDownloads(cacheRoot, { dryRun }) },
  async run(ctx, _inputs, params, outDir) {
    const cacheDir = ctx.cacheDir ?? defaultCacheDir();
    let record: Omit<RawDatasetDetails, "identity">;
    if (params.ratingsCsv) {
      const { digest } = await userRatingsFile(params.ratingsCsv, cacheDir);
      record = { name: path.basename(params.ratingsCsv), ratingsFile: params.ratingsCsv, digest, source: "file" };
    } else {
      const source = params.url ? { url: params.url } : params.dataDir ? { dataDir: params.dataDir } : {};
      record = await loadRawData({ dataset: params.dataset, cacheDir, ...source, rows: params.rows, seed: params.seed }, ctx).catch(
        (error: unknown) => {
          // loadRawData suggests the way out only for the failures it recognises as offline.
          if (error instanceof NetworkError && !error.message.includes("--dataset synthetic")) {
            throw new NetworkError(`${error.message}; offline? use a local mirror (--data-dir / MS_DATASETS_DIR) or --dataset synthetic`, { cause: error });
          }
          throw error;
        },
      );
    }
    const { bytes } = await writeRawDataset(outDir, record, params);
    ctx.metrics?.metric("bytes", bytes);
  },
  async stillValid(manifest) {
    if (!isRawDatasetDetails(manifest.details)) return false;
    return (await identityOf(manifest.details.ratingsFile)) === manifest.details.identity;
  },
  describe(manifest) {
    if (!isRawDatasetDetails(manifest.details)) return {};
    const d = manifest.details;
    return { file: d.ratingsFile, source: d.source, ...(d.format ? { format: d.format } : {}) };
  },
});

const etlParams: ParamDefs<EtlParams> = {
  maxRowLimit: param.integer({ default: ETL_DEFAULTS.maxRowLimit, name: "max_row_limit", doc: "keep the first N rows in file order; -1 keeps all (the seed's default is 100000)" }),
  keepTimestamp: param.boolean({ default: ETL_DEFAULTS.keepTimestamp, doc: "keep the timestamp column" }),
  dedupe: param.choice(["off", "latest"] as const, { default: ETL_DEFAULTS.dedupe, doc: "latest keeps the newest rating of each (user, movie) pair" }),
  format: param.choice(RATINGS_FORMATS, { doc: "force a ratings format instead of detecting it" }),
};

/** The seed's `etl_data`: ratings -> one zstd Parquet file, validated in the same pass. */
export const etlStep = defineStep({
  name: "etl",
  code: { package: "@ms/etl", version: ETL_VERSION },
  params: etlParams,
  resolve: resolveEtlParams,
  inputs: { ratings: "raw-dataset" },
  outputs: { ratings: "ratings" },
  async run(ctx, inputs, params, outDir) {
    const raw = await readRawDataset(inputs.ratings.dir);
    await etl({ ratingsCsv: raw.ratingsFile, ratingsDigest: raw.digest, ...(ctx.cacheDir ? { cacheDir: ctx.cacheDir } : {}) }, params, outDir, ctx);
  },
});
