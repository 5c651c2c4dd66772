/**
 * The download step (the seed's `load_raw_data`): finds a ratings file for a dataset name, from a
 * local mirror, the download cache, a fresh checksum-verified download, or the built-in
 * `synthetic` generator. Archives are kept by content digest, so asking twice costs nothing.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { cacheLayout } from "@ms/cache";
import {
  BadParameterError,
  CorruptArtifactError,
  InterruptedError,
  MissingArtifactError,
  NetworkError,
  asStorageError,
  buildArtifactDir,
  defaultCacheDir,
  digestFileRemembered,
  parseJsonFile,
  pidAlive,
  readManifest,
  sha256Hex,
  silentLogger,
  verifyArtifact,
  writeFileAtomic,
  writeManifest,
  type Digest,
  type Logger,
  type StepContext,
} from "@ms/contracts";
import * as v from "valibot";
import { DEFAULT_MAX_ENTRIES, extractZip } from "./archive.js";
import { DOWNLOAD_DEFAULTS, fetchText, fetchToFile, parseMd5File, type FetchOptions } from "./download.js";
import type { RatingsFormat } from "./formats.js";
import { SYNTHETIC_DEFAULTS, type SyntheticKind, writeSyntheticRatings } from "./synthetic.js";
import { ETL_VERSION } from "./version.js";

export interface DatasetSpec {
  name: string;
  /** Archive file name under the GroupLens base URL. */
  archive: string;
  /** Where the ratings file sits inside the archive. */
  ratingsPath: string;
  format: RatingsFormat;
  /**
   * An md5 kept in the code. Only where it can be cited; the `.md5` file GroupLens publishes beside
   * the archive wins when they disagree (GroupLens refreshes some archives).
   */
  md5?: string;
}

/** GroupLens publishes every archive at `<base>/<archive>` with `<archive>.md5` beside it. */
export const GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens";

/**
 * Known releases. No md5 is kept in the code: none could be cited from a source reachable here, so
 * every download is checked against the `.md5` file alone.
 */
export const MOVIELENS_DATASETS: Readonly<Record<string, DatasetSpec>> = {
  "ml-latest-small": { name: "ml-latest-small", archive: "ml-latest-small.zip", ratingsPath: "ml-latest-small/ratings.csv", format: "csv" },
  "ml-100k": { name: "ml-100k", archive: "ml-100k.zip", ratingsPath: "ml-100k/u.data", format: "tsv" },
  "ml-1m": { name: "ml-1m", archive: "ml-1m.zip", ratingsPath: "ml-1m/ratings.dat", format: "dat" },
  "ml-10m": { name: "ml-10m", archive: "ml-10m.zip", ratingsPath: "ml-10M100K/ratings.dat", format: "dat" },
  "ml-20m": { name: "ml-20m", archive: "ml-20m.zip", ratingsPath: "ml-20m/ratings.csv", format: "csv" },
  "ml-25m": { name: "ml-25m", archive: "ml-25m.zip", ratingsPath: "ml-25m/ratings.csv", format: "csv" },
  "ml-32m": { name: "ml-32m", archive: "ml-32m.zip", ratingsPath: "ml-32m/ratings.csv", format: "csv" },
};

export const DATASET_NAMES: readonly string[] = [...Object.keys(MOVIELENS_DATASETS), "synthetic"];

/** File names a ratings file has had across MovieLens releases, most common first. */
const RATINGS_FILE_NAMES = ["ratings.csv", "ratings.dat", "u.data"];

export interface LoadRawDataParams {
  /** A MovieLens name or `synthetic`; ignored when `url` is given. */
  dataset: string;
  /** Any MovieLens-layout zip; its checksum is read from `<url>.md5`. */
  url?: string;
  /** A local mirror holding `<name>/ratings.csv` (or the release's own file names). */
  dataDir?: string;
  /** Where downloads, extracted archives and synthetic data are kept. */
  cacheDir: string;
  /** Base URL for the named releases (tests point it at a loopback server). */
  baseUrl?: string;
  /** Fail when a server sends nothing for this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Fail when the archive download takes longer than this in all (default 1 h). */
  deadlineMs?: number;
  /** Fail when the archive is larger (default `$MS_MAX_DOWNLOAD_BYTES`, else 2 GiB). */
  maxDownloadBytes?: number;
  /** Refuse an archive with more entries (default 10,000; MovieLens archives hold under 20). */
  maxArchiveEntries?: number;
  /** Synthetic only. */
  rows?: number;
  seed?: number;
  kind?: SyntheticKind;
  /** Overrides the catalog (tests). */
  catalog?: Readonly<Record<string, DatasetSpec>>;
}

export interface RawDataset {
  name: string;
  ratingsFile: string;
  format?: RatingsFormat;
  /** Content digest of the ratings file. */
  digest: Digest;
  source: "mirror" | "cache" | "download" | "synthetic";
}

/** Re-exported: the rule lives in @ms/contracts so every package agrees on it. */
export { defaultCacheDir };

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function findRatingsFile(dir: string, preferred?: string): Promise<string | undefined> {
  const candidates = [...(preferred ? [preferred] : []), ...RATINGS_FILE_NAMES];
  for (const name of candidates) {
    const file = path.join(dir, name);
    if (await exists(file)) return file;
  }
  // Archives keep everything under one top directory (ml-10m's is `ml-10M100K`).
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    for (const name of RATINGS_FILE_NAMES) {
      const file = path.join(dir, entry.name, name);
      if (await exists(file)) return file;
    }
  }
  return undefined;
}

/** Runs the download step. */
export async function loadRawData(params: LoadRawDataParams, ctx: Partial<StepContext> = {}): Promise<RawDataset> {
  const logger = ctx.logger ?? silentLogger();
  if (params.url) return fromUrl(parseHttpUrl(params.url, "--url"), undefined, params, ctx, logger);
  const name = params.dataset;
  if (name === "synthetic") return synthetic(params, logger);
  const catalog = params.catalog ?? MOVIELENS_DATASETS;
  const spec = catalog[name];
  if (!spec)
    throw new BadParameterError(
      "dataset",
      `unknown dataset "${name}"; known: ${[...Object.keys(catalog), "synthetic"].join(", ")} (or give --url)`,
    );
  const mirrorDir = params.dataDir ?? process.env.MS_DATASETS_DIR;
  if (mirrorDir) {
    const file = await findRatingsFile(path.join(mirrorDir, name), path.basename(spec.ratingsPath));
    if (file) {
      logger.info({ file, status: "local mirror" }, "download: using the local mirror");
      return {
        name,
        ratingsFile: file,
        format: spec.format,
        digest: (await digestFileRemembered(file, cacheLayout(params.cacheDir).digests)).digest,
        source: "mirror",
      };
    }
    logger.info({ mirror: mirrorDir }, `download: ${name} not in the mirror, downloading`);
  }
  const base = (params.baseUrl ?? process.env.MS_MOVIELENS_BASE_URL ?? GROUPLENS_BASE_URL).replace(/\/$/, "");
  const baseName =
    params.baseUrl !== undefined ? "baseUrl" : process.env.MS_MOVIELENS_BASE_URL !== undefined ? "MS_MOVIELENS_BASE_URL" : "baseUrl";
  return fromUrl(parseHttpUrl(`${base}/${spec.archive}`, baseName), spec, params, ctx, logger);
}

/** Only http(s) URLs are fetched; anything else is the caller's mistake, named by its parameter. */
function parseHttpUrl(raw: string, parameter: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BadParameterError(parameter, `${JSON.stringify(raw)} is not a URL (expected http:// or https://)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new BadParameterError(parameter, `${JSON.stringify(raw)}: only http:// and https:// URLs are supported`);
  return url;
}

/** The archive size cap: the parameter, else `$MS_MAX_DOWNLOAD_BYTES`, else the default. */
function maxDownloadBytes(params: LoadRawDataParams): number {
  const raw =
    params.maxDownloadBytes ?? (process.env.MS_MAX_DOWNLOAD_BYTES ? Number(process.env.MS_MAX_DOWNLOAD_BYTES) : DOWNLOAD_DEFAULTS.maxBytes);
  const name = params.maxDownloadBytes !== undefined ? "maxDownloadBytes" : "MS_MAX_DOWNLOAD_BYTES";
  if (!Number.isSafeInteger(raw) || raw < 1) throw new BadParameterError(name, `must be a positive number of bytes, got ${String(raw)}`);
  return raw;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new BadParameterError(name, `must be a positive number, got ${value}`);
  return value;
}

/** `<cache>/downloads/url-<hash>.json`: which verified archive a URL gave. */
const ArchiveRecordSchema = v.object({
  url: v.string(),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits")),
  md5: v.string(),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
type ArchiveRecord = v.InferOutput<typeof ArchiveRecordSchema>;

interface Limits {
  fetch: FetchOptions;
  md5: FetchOptions;
  maxEntries: number;
}

async function fromUrl(
  url: URL,
  spec: DatasetSpec | undefined,
  params: LoadRawDataParams,
  ctx: Partial<StepContext>,
  logger: Logger,
): Promise<RawDataset> {
  const href = url.href;
  const name = spec?.name ?? path.basename(url.pathname).replace(/\.zip$/i, "");
  const idleTimeoutMs = positive("idleTimeoutMs", params.idleTimeoutMs, DOWNLOAD_DEFAULTS.idleTimeoutMs);
  const deadlineMs = positive("deadlineMs", params.deadlineMs, DOWNLOAD_DEFAULTS.deadlineMs);
  const common = { idleTimeoutMs, logger, ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.progress ? { progress: true } : {}) };
  const limits: Limits = {
    fetch: { ...common, deadlineMs, maxBytes: maxDownloadBytes(params) },
    md5: { ...common, deadlineMs: Math.min(deadlineMs, DOWNLOAD_DEFAULTS.md5DeadlineMs), maxBytes: DOWNLOAD_DEFAULTS.md5MaxBytes },
    maxEntries: positive("maxArchiveEntries", params.maxArchiveEntries, DEFAULT_MAX_ENTRIES),
  };
  const archives = cacheLayout(params.cacheDir).downloads;
  await cleanPartialDownloads(params.cacheDir);
  const recordFile = path.join(archives, `url-${sha256Hex(href).slice(0, 32)}.json`);
  let record: ArchiveRecord | undefined;
  try {
    record = await parseJsonFile(recordFile, ArchiveRecordSchema);
  } catch {
    // No record, or a corrupt one: download again (and replace it).
    record = undefined;
  }
  const archiveFile = (sha: string) => path.join(archives, `sha256-${sha}.zip`);
  const extractedDir = (sha: string) => path.join(cacheLayout(params.cacheDir).datasets, `sha256-${sha}`);
  let source: RawDataset["source"];
  if (
    record &&
    (await fs.stat(archiveFile(record.sha256)).then(
      (s) => s.size === record!.bytes,
      () => false,
    ))
  ) {
    source = "cache";
    logger.info({ url: href }, "download: archive already downloaded");
    const kept = archiveFile(record.sha256);
    try {
      await ensureExtracted(kept, extractedDir(record.sha256), href, name, spec, record, limits, ctx, logger);
    } catch (error) {
      // A kept archive that no longer extracts is no use to anyone: forget it, so the next run downloads again.
      if (error instanceof CorruptArtifactError) await Promise.all([fs.rm(kept, { force: true }), fs.rm(recordFile, { force: true })]);
      throw error;
    }
  } else {
    source = "download";
    record = await download(href, spec, archives, limits, ctx, logger, async (partial, fetched) => {
      // The archive is kept only once it verified and extracted; until then it is a partial file.
      await ensureExtracted(partial, extractedDir(fetched.sha256), href, name, spec, fetched, limits, ctx, logger);
    });
    await writeFileAtomic(recordFile, JSON.stringify(record, null, 2)).catch((error: unknown) => {
      throw asStorageError(error, recordFile);
    });
  }
  const manifest = await readManifest(extractedDir(record.sha256), "raw-dataset");
  const ratings = manifest.files[0];
  return {
    name,
    ratingsFile: path.join(extractedDir(record.sha256), ratings.path),
    format: spec?.format,
    digest: `sha256:${ratings.sha256}`,
    source,
  };
}

async function ensureExtracted(
  archive: string,
  extracted: string,
  url: string,
  name: string,
  spec: DatasetSpec | undefined,
  record: ArchiveRecord,
  limits: Limits,
  ctx: Partial<StepContext>,
  logger: Logger,
): Promise<void> {
  if ((await verifyArtifact(extracted, { deep: false, kind: "raw-dataset" })).ok) return;
  await fs.rm(extracted, { recursive: true, force: true });
  await buildArtifactDir(extracted, async (staging) => {
    logger.info({ archive, status: "extracting" }, "download: extracting");
    await extractZip(archive, staging, { maxEntries: limits.maxEntries, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    const file = await findRatingsFile(staging, spec?.ratingsPath);
    if (!file) throw new CorruptArtifactError(`${url}: the archive holds no ${RATINGS_FILE_NAMES.join(" / ")}`);
    await writeManifest(staging, {
      kind: "raw-dataset",
      files: [path.relative(staging, file).split(path.sep).join("/")],
      params: { url, name },
      metrics: {},
      details: { archive: { url, sha256: record.sha256, md5: record.md5, bytes: record.bytes }, format: spec?.format },
      producedBy: { step: "download", version: ETL_VERSION },
    });
  });
}

async function download(
  url: string,
  spec: DatasetSpec | undefined,
  archives: string,
  limits: Limits,
  ctx: Partial<StepContext>,
  logger: Logger,
  accept: (partial: string, record: ArchiveRecord) => Promise<void>,
): Promise<ArchiveRecord> {
  let published: string | undefined;
  try {
    published = parseMd5File(await fetchText(`${url}.md5`, limits.md5));
  } catch (error) {
    if (!(error instanceof NetworkError) || !/HTTP 404/.test(error.message) || spec) throw error;
  }
  if (published === undefined && spec) throw new CorruptArtifactError(`${url}.md5: holds no md5 digest`);
  if (published === undefined) logger.warn({ url }, "download: no .md5 file beside the archive; it cannot be verified");
  let expected = published;
  if (spec?.md5 && published && spec.md5 !== published) {
    logger.warn(
      { kept: spec.md5, published },
      "download: the md5 kept in the code differs from the published .md5 file; trusting the .md5 file",
    );
  } else if (spec?.md5 && !published) {
    expected = spec.md5;
  }
  try {
    await fs.mkdir(archives, { recursive: true });
  } catch (error) {
    throw asStorageError(error, archives);
  }
  const temp = path.join(archives, `${PARTIAL_PREFIX}${process.pid}-${Date.now()}-${randomBytes(3).toString("hex")}.zip`);
  try {
    logger.info({ url, status: "downloading" }, "download: fetching");
    const fetched = await fetchToFile(url, temp, limits.fetch);
    if (expected && fetched.md5 !== expected) {
      throw new CorruptArtifactError(
        `${url}: checksum mismatch, md5 ${fetched.md5} but ${url}.md5 says ${expected}; the download was discarded`,
      );
    }
    if (expected) logger.info({ bytes: fetched.bytes, md5: fetched.md5 }, "download: archive verified");
    const record = { url, sha256: fetched.sha256, md5: fetched.md5, bytes: fetched.bytes };
    if (ctx.signal?.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new InterruptedError();
    await accept(temp, record);
    try {
      await fs.rename(temp, path.join(archives, `sha256-${fetched.sha256}.zip`));
    } catch (error) {
      throw asStorageError(error, archives);
    }
    return record;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

const PARTIAL_PREFIX = ".partial-";
const PARTIAL = /^\.partial-(\d+)-\d+(?:-[0-9a-f]+)?\.zip$/;

/**
 * Removes the partial downloads (`.partial-<pid>-*.zip` in the cache layout's downloads place) of processes that are
 * gone (same-host pid check, as the driver's cache uses) and returns their paths. Every download
 * calls it first; `ms cache gc` can too.
 */
export async function cleanPartialDownloads(cacheDir: string, options: { dryRun?: boolean } = {}): Promise<string[]> {
  const dir = cacheLayout(cacheDir).downloads;
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(PARTIAL.exec(name)?.[1]);
    if (!(pid > 0) || pidAlive(pid)) continue;
    const file = path.join(dir, name);
    if (!options.dryRun) await fs.rm(file, { force: true }).catch(() => undefined);
    removed.push(file);
  }
  return removed;
}

async function synthetic(params: LoadRawDataParams, logger: Logger): Promise<RawDataset> {
  const rows = params.rows ?? SYNTHETIC_DEFAULTS.rows;
  const seed = params.seed ?? SYNTHETIC_DEFAULTS.seed;
  if (!Number.isInteger(seed)) throw new BadParameterError("seed", `must be an integer, got ${seed}`);
  const kind = params.kind ?? SYNTHETIC_DEFAULTS.kind;
  // lowrank keeps the directory name it had before there were kinds.
  const dir = path.join(cacheLayout(params.cacheDir).datasets, `synthetic-${kind === "lowrank" ? "" : `${kind}-`}r${rows}-s${seed}-v1`);
  if (!(await verifyArtifact(dir, { deep: false, kind: "raw-dataset" })).ok) {
    await fs.rm(dir, { recursive: true, force: true });
    await buildArtifactDir(dir, async (staging) => {
      const started = performance.now();
      const shape = writeSyntheticRatings(path.join(staging, "ratings.csv"), { rows, seed, kind });
      logger.info(
        { ...shape, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) },
        "download: generated synthetic ratings",
      );
      await writeManifest(staging, {
        kind: "raw-dataset",
        files: ["ratings.csv"],
        params: { name: "synthetic", rows, seed, kind },
        metrics: {},
        details: { ...shape, format: "csv" },
        producedBy: { step: "download", version: ETL_VERSION },
      });
    });
  } else {
    logger.info({ dir }, "download: synthetic ratings already generated");
  }
  const manifest = await readManifest(dir, "raw-dataset");
  if (!manifest.files[0]) throw new MissingArtifactError(`${dir}: manifest lists no ratings file`);
  return {
    name: "synthetic",
    ratingsFile: path.join(dir, "ratings.csv"),
    format: "csv",
    digest: `sha256:${manifest.files[0].sha256}`,
    source: "synthetic",
  };
}
