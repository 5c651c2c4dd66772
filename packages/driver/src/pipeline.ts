/**
 * `ms run`: download -> etl -> als -> keras, each step behind the content-addressed cache and
 * tracked as a child run. A step's key is
 *   sha256(canonicalJson({ step, version, codeDigest, params, inputs: { name: digest } }))
 * so an upstream change that leaves an output byte-identical does not rerun what follows.
 * Step packages are imported only when a step really runs (they load DuckDB and TensorFlow.js).
 */
import path from "node:path";
import {
  BadParameterError,
  InterruptedError,
  NetworkError,
  readManifest,
  canonicalJson,
  digestFile,
  silentLogger,
  sha256Hex,
  type Digest,
  type Logger,
  type Manifest,
  defaultCacheDir,
} from "@ms/contracts";
import { createTracker, type ParamValue } from "@ms/tracking";
import { codeIdentity } from "./code.js";
import { keyParams, namedParams, resolveParams, stepModules, type ParamResolution, type StepName } from "./params.js";
import { BufferedMetrics, ENTRY_POINTS, RunLog, TAGS, gitCommit, type LogArtifacts } from "./runlog.js";
import { CacheStore, SOURCE_FILE, sourceUnchanged, statSource, writeSourceRecord, type EntryInfo, type SourceRecord } from "./storage.js";

export const DEFAULT_DATASET = "ml-latest-small";
export const DEFAULT_EXPERIMENT = "Default";

export interface RunPipelineOptions {
  /** A MovieLens name or `synthetic` (default ml-latest-small). */
  dataset?: string;
  /** A local ratings file instead of a dataset. */
  ratingsCsv?: string;
  /** A mirror holding `<dataset>/ratings.csv` (default $MS_DATASETS_DIR). */
  dataDir?: string;
  /** Raw `-P key=value` pairs. */
  params?: Readonly<Record<string, string>>;
  cacheDir?: string;
  /** Recompute these steps even when cached (the new entry replaces the old). */
  force?: readonly StepName[];
  /** Recompute every step (results are still stored). */
  noCache?: boolean;
  trackingUri?: string;
  experiment?: string;
  logArtifacts?: LogArtifacts;
  logger?: Logger;
  /** Let steps draw per-iteration progress. */
  progress?: boolean;
  signal?: AbortSignal;
  /** Where to look for a git checkout (default cwd). */
  cwd?: string;
}

export interface StepReport {
  step: StepName;
  cached: boolean;
  key: string;
  runId: string;
  outputs: Record<string, unknown>;
  metrics: Record<string, unknown>;
  seconds: number;
}

export interface PipelineReport {
  runId: string;
  steps: StepReport[];
}

/** Re-exported from @ms/contracts, where every package's cache location is decided. */
export { defaultCacheDir };

/** A step as the executor sees it. */
interface StepPlan {
  step: StepName;
  pkg: string;
  keyParams: Record<string, unknown>;
  inputs: Record<string, Digest>;
  params: Record<string, ParamValue>;
  /** Extra check of a hit beyond the entry itself (download: the ratings file is unchanged). */
  stillValid?(manifest: Manifest): Promise<boolean>;
  /** Writes the step's output directory at `outDir`. */
  compute(outDir: string, ctx: { logger: Logger; metrics: BufferedMetrics; signal?: AbortSignal; progress?: boolean }, key: string, version: string): Promise<void>;
  /** The digest downstream keys use. */
  outputDigest(manifest: Manifest): Digest;
  outputs(dir: string, manifest: Manifest): Record<string, unknown>;
  small: readonly string[];
}

interface Executed {
  report: StepReport;
  dir: string;
  manifest: Manifest;
  digest: Digest;
}

function numericMetrics(metrics: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) if (typeof v === "number") out[k] = v;
  return out;
}

class Pipeline {
  readonly store: CacheStore;
  private log!: RunLog;
  private parentId = "";
  private commit: string | undefined;
  private readonly logger: Logger;
  /** Keys already reported as damaged (waiters poll them while another driver recomputes). */
  private readonly warnedDamaged = new Set<string>();

  constructor(private readonly o: RunPipelineOptions) {
    this.store = new CacheStore(o.cacheDir ?? defaultCacheDir());
    this.logger = o.logger ?? silentLogger();
  }

  async run(): Promise<PipelineReport> {
    const o = this.o;
    const store = this.store;
    await store.ensureLayout();
    const leftovers = await store.cleanLeftovers();
    if (leftovers.tmp.length || leftovers.locks.length) this.logger.info({ tmp: leftovers.tmp.length, locks: leftovers.locks.length }, "cache: removed leftovers of killed runs");
    const resolution = await resolveParams(o.params ?? {}, store);
    const tracker = createTracker(o.trackingUri);
    this.log = await RunLog.open(tracker, o.experiment ?? DEFAULT_EXPERIMENT, this.logger);
    this.commit = await gitCommit(o.cwd ?? process.cwd());
    const dataset = o.ratingsCsv ? undefined : (o.dataset ?? DEFAULT_DATASET);
    this.parentId = await this.log.start("ms-run", {
      [TAGS.entryPoint]: "main",
      [TAGS.sourceName]: "ms",
      [TAGS.sourceType]: "LOCAL",
      ...(this.commit ? { [TAGS.gitCommit]: this.commit } : {}),
    });
    const steps: StepReport[] = [];
    try {
      await this.log.params(this.parentId, {
        ...resolution.flat,
        ...(dataset ? { dataset } : {}),
        ...(o.ratingsCsv ? { ratings_csv: path.resolve(o.ratingsCsv) } : {}),
      });
      const download = await this.execute(this.downloadPlan(resolution, dataset));
      steps.push(download.report);
      const source = download.manifest.details as unknown as SourceRecord;
      const etl = await this.execute(this.etlPlan(resolution, source));
      steps.push(etl.report);
      const alsStep = await this.execute(this.alsPlan(resolution, etl));
      steps.push(alsStep.report);
      const kerasStep = await this.execute(this.kerasPlan(resolution, etl, alsStep));
      steps.push(kerasStep.report);
      await this.log.end(this.parentId, "FINISHED");
    } catch (error) {
      await this.log.endQuietly(this.parentId, this.interrupted(error) ? "KILLED" : "FAILED");
      throw error;
    }
    return { runId: this.parentId, steps };
  }

  private interrupted(error: unknown): boolean {
    return error instanceof InterruptedError || this.o.signal?.aborted === true;
  }

  private checkSignal(): void {
    if (this.o.signal?.aborted) throw new InterruptedError("interrupted");
  }

  private downloadPlan(resolution: ParamResolution, dataset: string | undefined): StepPlan {
    const o = this.o;
    const dataDir = o.dataDir ?? process.env.MS_DATASETS_DIR;
    const synthetic = dataset === "synthetic" ? resolution.resolved.download : undefined;
    const keyParams: Record<string, unknown> = o.ratingsCsv
      ? { ratingsCsv: path.resolve(o.ratingsCsv) }
      : { dataset, dataDir: dataDir ? path.resolve(dataDir) : null, ...(synthetic ? { rows: synthetic.rows, seed: synthetic.seed } : {}) };
    const params: Record<string, ParamValue> = o.ratingsCsv
      ? { ratings_csv: path.resolve(o.ratingsCsv) }
      : { dataset: dataset!, ...(dataDir ? { data_dir: path.resolve(dataDir) } : {}), ...(synthetic ? namedParams("download", resolution) : {}) };
    return {
      step: "download",
      pkg: "@ms/etl",
      keyParams,
      inputs: {},
      params,
      stillValid: (manifest) => sourceUnchanged(manifest.details as unknown as SourceRecord),
      compute: async (outDir, ctx, key, version) => {
        let record: Omit<SourceRecord, "size" | "mtimeMs" | "ino">;
        if (o.ratingsCsv) {
          const file = path.resolve(o.ratingsCsv);
          const { digest } = await digestFile(file).catch((error: unknown) => {
            throw new BadParameterError("--ratings-csv", `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
          });
          record = { name: path.basename(file), ratingsFile: file, digest, source: "file" };
        } else {
          const { etl } = await stepModules();
          const raw = await etl
            .loadRawData(
              { dataset: dataset!, cacheDir: this.store.root, ...(dataDir ? { dataDir } : {}), ...(synthetic ? { rows: synthetic.rows, seed: synthetic.seed } : {}) },
              { logger: ctx.logger },
            )
            .catch((error: unknown) => {
              // @ms/etl suggests the way out only for the failures it recognises as offline.
              if (error instanceof NetworkError && !error.message.includes("--dataset synthetic")) {
                throw new NetworkError(`${error.message}; offline? use a local mirror (--data-dir / MS_DATASETS_DIR) or --dataset synthetic`, { cause: error });
              }
              throw error;
            });
          record = { name: raw.name, ratingsFile: raw.ratingsFile, ...(raw.format ? { format: raw.format } : {}), digest: raw.digest, source: raw.source };
        }
        const st = await statSource(record.ratingsFile);
        if (!st) throw new Error(`${record.ratingsFile}: vanished after it was hashed`);
        ctx.metrics.metric("bytes", st.size);
        await writeSourceRecord(outDir, { ...record, ...st }, keyParams, { step: "download", version, key });
      },
      outputDigest: (m) => (m.details as unknown as SourceRecord).digest as Digest,
      outputs: (_dir, m) => {
        const d = m.details as unknown as SourceRecord;
        return { ratings: { kind: "raw-dataset", file: d.ratingsFile, digest: d.digest, source: d.source, ...(d.format ? { format: d.format } : {}) } };
      },
      small: [SOURCE_FILE],
    };
  }

  private etlPlan(resolution: ParamResolution, source: SourceRecord): StepPlan {
    return {
      step: "etl",
      pkg: "@ms/etl",
      keyParams: keyParams("etl", resolution),
      inputs: { ratings: source.digest as Digest },
      params: namedParams("etl", resolution),
      compute: async (outDir, ctx) => {
        const { etl } = await stepModules();
        await etl.etl({ ratingsCsv: source.ratingsFile, ratingsDigest: source.digest as Digest }, resolution.resolved.etl as never, outDir, ctx);
      },
      outputDigest: (m) => m.digest,
      outputs: (dir, m) => ({ ratings: { kind: "ratings", dir, digest: m.digest } }),
      small: [],
    };
  }

  private alsPlan(resolution: ParamResolution, ratings: Executed): StepPlan {
    return {
      step: "als",
      pkg: "@ms/als",
      keyParams: keyParams("als", resolution),
      inputs: { ratings: ratings.digest },
      params: namedParams("als", resolution),
      compute: async (outDir, ctx) => {
        const { als } = await stepModules();
        await als.als({ ratings: ratings.dir }, resolution.resolved.als as never, outDir, ctx);
      },
      outputDigest: (m) => m.digest,
      outputs: (dir, m) => ({ factors: { kind: "factors", dir, digest: m.digest } }),
      small: [],
    };
  }

  private kerasPlan(resolution: ParamResolution, ratings: Executed, factors: Executed): StepPlan {
    return {
      step: "keras",
      pkg: "@ms/keras",
      keyParams: keyParams("keras", resolution),
      inputs: { ratings: ratings.digest, factors: factors.digest },
      params: namedParams("keras", resolution),
      compute: async (outDir, ctx) => {
        const { keras } = await stepModules();
        await keras.keras({ ratings: ratings.dir, factors: factors.dir }, resolution.resolved.keras as never, outDir, ctx);
      },
      outputDigest: (m) => m.digest,
      outputs: (dir, m) => ({ model: { kind: "keras-model", dir, digest: m.digest } }),
      small: [],
    };
  }

  /** A usable entry for `key`, or undefined (missing, damaged, or its source changed). */
  private async usable(plan: StepPlan, key: string): Promise<{ dir: string; manifest: Manifest; entry: EntryInfo } | undefined> {
    const check = await this.store.checkEntry(key);
    if (check.status === "damaged") {
      if (this.warnedDamaged.has(key)) return undefined;
      this.warnedDamaged.add(key);
      this.logger.warn({ step: plan.step, key: key.slice(0, 12), problems: check.problems }, `${plan.step}: cache entry is damaged; recomputing it`);
      return undefined;
    }
    if (check.status !== "hit") return undefined;
    if (plan.stillValid && !(await plan.stillValid(check.manifest))) {
      this.logger.info({ step: plan.step }, `${plan.step}: the source file changed since it was hashed; recomputing`);
      return undefined;
    }
    return check;
  }

  private async execute(plan: StepPlan): Promise<Executed> {
    this.checkSignal();
    const o = this.o;
    const started = performance.now();
    const code = await codeIdentity(plan.pkg);
    const key = sha256Hex(canonicalJson({ step: plan.step, version: code.version, codeDigest: code.codeDigest, params: plan.keyParams, inputs: plan.inputs }));
    const logger = this.logger.child({ step: plan.step });
    const runId = await this.log.start(ENTRY_POINTS[plan.step], {
      [TAGS.entryPoint]: ENTRY_POINTS[plan.step],
      [TAGS.step]: plan.step,
      [TAGS.cacheKey]: key,
      [TAGS.sourceName]: "ms",
      [TAGS.sourceType]: "LOCAL",
      ...(this.commit ? { [TAGS.gitCommit]: this.commit } : {}),
    }, this.parentId);
    const metrics = new BufferedMetrics();
    try {
      await this.log.params(runId, plan.params);
      const forced = o.noCache === true || (o.force ?? []).includes(plan.step);
      let hit = forced ? undefined : await this.usable(plan, key);
      if (!hit) {
        const got = await this.store.acquire(
          key,
          async () => (forced ? undefined : this.usable(plan, key)),
          (holder) => logger.info({ pid: holder.pid, hostname: holder.hostname }, `${plan.step}: another run is computing this step; waiting for it`),
          o.signal,
        );
        if ("value" in got) hit = got.value;
        else {
          try {
            if (!forced) hit = await this.usable(plan, key);
            if (!hit) {
              logger.info({ key: key.slice(0, 12) }, `${plan.step}: computing`);
              const temp = this.store.tempPath(plan.step);
              try {
                await plan.compute(temp.dir, { logger, metrics, signal: o.signal, progress: o.progress }, key, code.version);
                this.checkSignal();
                const now = new Date().toISOString();
                const manifest = await readManifest(temp.dir);
                const info: EntryInfo = {
                  key,
                  step: plan.step,
                  version: code.version,
                  codeDigest: code.codeDigest,
                  params: plan.params,
                  inputs: plan.inputs,
                  outputDigest: plan.outputDigest(manifest),
                  createdAt: now,
                  lastUsedAt: now,
                  producedByRun: runId,
                };
                const dir = await this.store.publish(temp.dir, info);
                await this.log.metrics(runId, metrics.take());
                await this.log.tags(runId, { [TAGS.cacheHit]: "false" });
                await this.log.artifacts(runId, dir, o.logArtifacts ?? "all", this.store.smallFiles(key, plan.small));
                await this.log.end(runId, "FINISHED");
                const seconds = (performance.now() - started) / 1000;
                logger.info({ seconds: Number(seconds.toFixed(2)) }, `${plan.step}: step finished and cached`);
                const digest = plan.outputDigest(manifest);
                return {
                  report: { step: plan.step, cached: false, key, runId, outputs: plan.outputs(dir, manifest), metrics: manifest.metrics, seconds },
                  dir,
                  manifest,
                  digest,
                };
              } finally {
                await temp.discard();
              }
            }
          } finally {
            await got.lock.release();
          }
        }
      }
      // A hit: link to the run that produced the entry instead of redoing the work.
      await this.store.touch(hit.entry);
      logger.info({ key: key.slice(0, 12), producedByRun: hit.entry.producedByRun }, `${plan.step}: cached`);
      await this.log.tags(runId, { [TAGS.cacheHit]: "true", ...(hit.entry.producedByRun ? { [TAGS.producedBy]: hit.entry.producedByRun } : {}) });
      const now = Date.now();
      await this.log.metrics(runId, Object.entries(numericMetrics(hit.manifest.metrics)).map(([k, value]) => ({ key: k, value, step: 0, timestamp: now })));
      await this.log.artifacts(runId, hit.dir, (o.logArtifacts ?? "all") === "none" ? "none" : "manifests", this.store.smallFiles(key, plan.small));
      await this.log.end(runId, "FINISHED");
      return {
        report: { step: plan.step, cached: true, key, runId, outputs: plan.outputs(hit.dir, hit.manifest), metrics: hit.manifest.metrics, seconds: (performance.now() - started) / 1000 },
        dir: hit.dir,
        manifest: hit.manifest,
        digest: plan.outputDigest(hit.manifest),
      };
    } catch (error) {
      await this.log.metrics(runId, metrics.take()).catch(() => undefined);
      await this.log.endQuietly(runId, this.interrupted(error) ? "KILLED" : "FAILED");
      throw error;
    }
  }
}

/** Runs the pipeline; resolves to the report `ms run --json` prints. */
export function runPipeline(options: RunPipelineOptions = {}): Promise<PipelineReport> {
  return new Pipeline(options).run();
}
