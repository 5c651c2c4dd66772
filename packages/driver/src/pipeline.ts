/**
 * `ms run`: the step definitions of `steps.ts` run in order, each behind the content-addressed
 * cache and tracked as a child run of one parent run. The driver knows no step by name: a step's
 * inputs are the outputs of earlier steps matched by artifact kind, its parameters come from its
 * schema, its key from @ms/cache's `cacheKey`, and its result from the cache session's get-or-compute.
 */
import {
  InterruptedError,
  silentLogger,
  defaultCacheDir,
  type ArtifactKind,
  type ArtifactRef,
  type BoundStep,
  type Digest,
  type Logger,
  type Manifest,
  type Step,
  writeFileAtomic,
} from "@ms/contracts";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createTracker, recordUnclosedRuns, UNCLOSED_RUNS_FILE, type MetricInput, type Tracker } from "@ms/tracking";
import {
  CacheStore,
  cacheKey,
  codeIdentity,
  openSession,
  type CacheSession,
  type CacheSource,
  type EntryDescription,
  type RemoteTransfer,
} from "@ms/cache";
import { S3RemoteStore, type RemoteMode } from "@ms/cache-s3";
import { resolveParams, type Resolution } from "./params.js";
import { evaluate, readMemo, reportMemoKey, writeMemo, type RunEntry } from "@ms/serve";
import { ChartWorker, charts, FiguresSchema, renderFigures, renderReport, type StepHistory } from "@ms/report";
import { readHistory, replay, writeHistory, type HistoryPoint } from "./history.js";
import { BufferedMetrics, ENTRY_POINTS, RunLog, TAGS, gitCommit, type LogArtifacts } from "./runlog.js";
import { PIPELINE } from "./steps.js";

export const DEFAULT_DATASET = "ml-latest-small";
export const DEFAULT_EXPERIMENT = "Default";
export const REPORT_FILE = "report.html";

export interface RunPipelineOptions {
  /** A MovieLens name or `synthetic` (default ml-latest-small). */
  dataset?: string;
  /** A local ratings file instead of a dataset. */
  ratingsCsv?: string;
  /** A mirror holding `<dataset>/ratings.csv` (default $MS_DATASETS_DIR). */
  dataDir?: string;
  /** Any MovieLens-layout zip to download instead of a dataset. */
  url?: string;
  /** Raw `-P key=value` pairs. */
  params?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  cacheDir?: string;
  /** Recompute these steps even when cached (the new entry replaces the old). */
  force?: readonly string[];
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
  /** The steps to run (default: the pipeline of steps.ts). */
  steps?: readonly Step[];
  /** Told when each step starts and ends (the live progress display). */
  events?: PipelineEvents;
  /** Write the run report (report.html) and log it to the parent run (default true). */
  report?: boolean;
  /** A shared step cache, `s3://BUCKET/PREFIX` (credentials, region and endpoint from the AWS chain). */
  remoteCache?: string;
  /** read, write or readwrite (default). */
  remoteCacheMode?: RemoteMode;
  /** A remote that cannot be used is an error (exit 6) instead of one warning. */
  remoteCacheRequired?: boolean;
  /** The S3-compatible endpoint (default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL). */
  remoteCacheEndpoint?: string;
  /**
   * Environment read for MLflow's project variables (default process.env): under `mlflow run`,
   * `MLFLOW_RUN_ID` is the run to use as the parent and `MLFLOW_EXPERIMENT_ID` the experiment.
   */
  env?: NodeJS.ProcessEnv;
}

export interface StepReport {
  step: string;
  cached: boolean;
  /** local or remote for a hit, computed otherwise. */
  source: CacheSource;
  /** Bytes and seconds moved to or from the remote cache (a remote hit, or the push of a computed result). */
  remote?: RemoteTransfer;
  key: string;
  runId: string;
  outputs: Record<string, unknown>;
  metrics: Record<string, unknown>;
  seconds: number;
}

export interface PipelineEvents {
  stepStarted?(step: string): void;
  stepFinished?(report: StepReport): void;
  stepFailed?(step: string, error: unknown): void;
}

export type { StepHistory };

export interface PipelineReport {
  runId: string;
  steps: StepReport[];
  /** The run report (report.html), also logged as an artifact of the parent run; absent with `report: false` or when it could not be made. */
  report?: string;
}

/** Re-exported from @ms/contracts, where every package's cache location is decided. */
export { defaultCacheDir };

function numericMetrics(metrics: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) if (typeof v === "number") out[k] = v;
  return out;
}

/**
 * Adds to the buffered metrics the manifest's final numeric metrics the step did not report
 * itself, so a computed run and every later hit log the same set.
 */
async function withFinalMetrics(metrics: BufferedMetrics, dir: string): Promise<MetricInput[]> {
  const manifest = JSON.parse(await fs.readFile(path.join(dir, "manifest.json"), "utf8")) as { metrics?: Record<string, unknown> };
  const seen = new Set(Object.keys(metrics.latest));
  for (const [k, v] of Object.entries(numericMetrics(manifest.metrics ?? {}))) if (!seen.has(k) && Number.isFinite(v)) metrics.metric(k, v);
  return metrics.peek();
}

/** The flags that stand for download parameters, merged under `-P` names (a flag wins). */
function withSourceFlags(o: RunPipelineOptions): Map<string, string> {
  const raw = new Map(o.params instanceof Map ? o.params : Object.entries(o.params ?? {}));
  const dataDir = o.dataDir ?? process.env.MS_DATASETS_DIR;
  if (o.dataset !== undefined) raw.set("dataset", o.dataset);
  if (o.ratingsCsv !== undefined) raw.set("ratings_csv", o.ratingsCsv);
  if (o.url !== undefined) raw.set("url", o.url);
  if (dataDir) raw.set("data_dir", dataDir);
  return raw;
}

class Pipeline {
  readonly store: CacheStore;
  private remote: S3RemoteStore | undefined;
  private log!: RunLog;
  private session!: CacheSession;
  /** Started by the first step computed (a fully cached run draws its report from the memo). */
  private chartWorker: ChartWorker | undefined;
  private parentId = "";
  private commit: string | undefined;
  private readonly logger: Logger;

  constructor(private readonly o: RunPipelineOptions) {
    this.store = new CacheStore(o.cacheDir ?? defaultCacheDir());
    this.logger = o.logger ?? silentLogger();
  }

  async run(): Promise<PipelineReport> {
    const o = this.o;
    // Parameters are checked before anything is created: a bad one leaves no run behind.
    const resolution = resolveParams(o.steps ?? PIPELINE, withSourceFlags(o));
    this.remote = o.remoteCache
      ? new S3RemoteStore({
          url: o.remoteCache,
          mode: o.remoteCacheMode,
          required: o.remoteCacheRequired,
          endpoint: o.remoteCacheEndpoint,
          logger: this.logger,
          env: o.env ?? process.env,
        })
      : undefined;
    await this.store.ensureLayout();
    const leftovers = await this.store.cleanLeftovers();
    if (leftovers.tmp.length || leftovers.locks.length)
      this.logger.info({ tmp: leftovers.tmp.length, locks: leftovers.locks.length }, "cache: removed leftovers of killed runs");
    this.session = openSession(this.store, { remote: this.remote });
    const tracker = createTracker(o.trackingUri, { logger: this.logger });
    try {
      return await this.tracked(tracker, resolution);
    } finally {
      await this.chartWorker?.close();
      await this.session.close();
      await this.reportUnclosed(tracker);
    }
  }

  /** Runs a tracking server could not be told the end of stay RUNNING there: say which, and keep a record. */
  private async reportUnclosed(tracker: Tracker): Promise<void> {
    const unclosed = tracker.unclosedRuns();
    if (!unclosed.length) return;
    const file = path.join(this.store.layout.tracking, UNCLOSED_RUNS_FILE);
    await recordUnclosedRuns(file, unclosed).catch((error: unknown) =>
      this.logger.warn({ err: error }, "could not record the unclosed runs"),
    );
    this.logger.warn(
      { runs: unclosed.map((r) => r.runId), file },
      `${unclosed.length} run(s) stay RUNNING in the tracking store (it could not be reached); listed in ${file}`,
    );
  }

  private async tracked(tracker: Tracker, resolution: Resolution): Promise<PipelineReport> {
    const o = this.o;
    const env = o.env ?? process.env;
    const adopted = env.MLFLOW_RUN_ID?.trim() || undefined;
    this.commit = await gitCommit(o.cwd ?? process.cwd());
    const parentTags = {
      [TAGS.entryPoint]: "main",
      [TAGS.sourceName]: "ms",
      [TAGS.sourceType]: "LOCAL",
      ...(this.commit ? { [TAGS.gitCommit]: this.commit } : {}),
    };
    if (adopted) {
      // Under `mlflow run` the project's run already exists: it is our parent, not a second top-level run.
      this.log = await RunLog.forRun(tracker, adopted, this.logger);
      this.parentId = adopted;
      this.logger.info({ runId: adopted }, `tracking into the run MLflow created (MLFLOW_RUN_ID=${adopted})`);
      await this.log.tags(this.parentId, { [TAGS.sourceName]: "ms", ...(this.commit ? { [TAGS.gitCommit]: this.commit } : {}) });
    } else {
      const experimentId = o.experiment === undefined ? env.MLFLOW_EXPERIMENT_ID?.trim() || undefined : undefined;
      this.log = experimentId
        ? await RunLog.forExperiment(tracker, experimentId, this.logger)
        : await RunLog.open(tracker, o.experiment ?? DEFAULT_EXPERIMENT, this.logger);
      this.parentId = await this.log.start("ms-run", parentTags);
    }
    const steps: StepReport[] = [];
    try {
      await (adopted ? this.log.newParams(this.parentId, resolution.flat) : this.log.params(this.parentId, resolution.flat));
      /** The latest output of each kind: what a later step's input of that kind reads. */
      const produced = new Map<ArtifactKind, ArtifactRef>();
      for (const bound of resolution.steps) {
        const inputs: Record<string, ArtifactRef> = {};
        for (const [name, kind] of Object.entries(bound.step.inputs)) {
          const ref = produced.get(kind);
          if (!ref) throw new Error(`step ${bound.step.name} needs a ${kind} artifact that no earlier step produces`);
          inputs[name] = ref;
        }
        const { report, dir, manifest, history } = await this.execute(bound, inputs);
        steps.push(report);
        this.histories.push({ step: bound.step.name, points: history });
        // The parent carries every step's final metrics under step-prefixed names, for MLflow's compare view.
        const now = Date.now();
        await this.log.metrics(
          this.parentId,
          Object.entries(numericMetrics(report.metrics)).map(([k, value]) => ({
            key: `${bound.step.name}_${k}`,
            value,
            step: 0,
            timestamp: now,
          })),
        );
        for (const kind of Object.values(bound.step.outputs)) produced.set(kind, { kind, dir, digest: manifest.digest });
      }
      const reportFile = o.report === false ? undefined : await this.writeReport(tracker, { runId: this.parentId, steps }, resolution.flat);
      await this.log.end(this.parentId, "FINISHED");
      if (reportFile) return { runId: this.parentId, steps, report: reportFile };
    } catch (error) {
      await this.log.endQuietly(this.parentId, this.interrupted(error) ? "KILLED" : "FAILED");
      throw error;
    }
    return { runId: this.parentId, steps };
  }

  /** The metric histories of the steps run so far (for the report). */
  readonly histories: StepHistory[] = [];
  /** The entries of the steps run so far (for the report). */
  private readonly entries: RunEntry[] = [];

  /**
   * Writes report.html and logs it to the parent run. A report that cannot be made is a warning,
   * never a failed run; a tracking store that cannot take it fails like any other tracking call.
   */
  private async writeReport(tracker: Tracker, report: PipelineReport, params: Record<string, unknown>): Promise<string | undefined> {
    this.checkSignal();
    const started = performance.now();
    let html: string;
    try {
      // The figures depend only on the entries (a hit replays the history that computed it): drawn once per set.
      const memo = `figures-${reportMemoKey(this.entries)}.json`;
      const memoDir = this.store.layout.meta;
      let figures = await readMemo(memoDir, memo, FiguresSchema, this.logger);
      if (!figures) {
        // The training curves need no evaluation: drawn (in the chart worker) while the models are scored.
        const curves = renderFigures(charts(this.histories, undefined), this.chartWorker);
        curves.catch(() => undefined);
        const evaluation = await evaluate(this.entries, { memoDir, logger: this.logger }).catch((error: unknown) => {
          this.logger.warn({ err: error }, `report: no test-set figures (${(error as Error).message})`);
          return undefined;
        });
        figures = [...(await curves), ...(await renderFigures(charts([], evaluation), this.chartWorker))];
        if (evaluation) await writeMemo(memoDir, memo, figures);
      }
      html = renderReport({ report, figures, params, trackingUri: tracker.uri });
    } catch (error) {
      this.logger.warn({ err: error }, `report: could not be made (${(error as Error).message})`);
      return undefined;
    }
    const dir = path.join(this.store.layout.reports, report.runId);
    const file = path.join(dir, REPORT_FILE);
    try {
      await fs.mkdir(dir, { recursive: true });
      await writeFileAtomic(file, html);
    } catch (error) {
      this.logger.warn({ err: error }, `report: could not be written to ${file} (${(error as Error).message})`);
      return undefined;
    }
    await this.log.artifacts(report.runId, file, "all", []);
    this.logger.debug({ seconds: Number(((performance.now() - started) / 1000).toFixed(2)) }, "report written");
    // A file store holds its own copy among the run's artifacts: point there and drop ours.
    const artifactUri = (await tracker.getRun(report.runId)).info.artifactUri;
    if (artifactUri.startsWith("file:")) {
      const logged = path.join(fileURLToPath(artifactUri), REPORT_FILE);
      if (
        await fs.stat(logged).then(
          (st) => st.isFile(),
          () => false,
        )
      ) {
        await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
        return logged;
      }
    }
    return file;
  }

  private interrupted(error: unknown): boolean {
    return error instanceof InterruptedError || this.o.signal?.aborted === true;
  }

  private checkSignal(): void {
    if (this.o.signal?.aborted) throw new InterruptedError("interrupted");
  }

  private async execute(
    bound: BoundStep,
    inputs: Record<string, ArtifactRef>,
  ): Promise<{ report: StepReport; dir: string; manifest: Manifest; history: HistoryPoint[] }> {
    this.checkSignal();
    const o = this.o;
    const step = bound.step;
    const started = performance.now();
    o.events?.stepStarted?.(step.name);
    const code = await codeIdentity(step.code.package, import.meta.url);
    const inputDigests: Record<string, Digest> = {};
    for (const [name, ref] of Object.entries(inputs)) inputDigests[name] = ref.digest;
    const key = cacheKey({
      step: step.name,
      version: code.version,
      codeDigest: code.codeDigest,
      params: bound.keyParams,
      inputs: inputDigests,
    });
    const logger = this.logger.child({ step: step.name });
    const entryPoint = ENTRY_POINTS[step.name] ?? step.name;
    const params = bound.params;
    const runId = await this.log.start(
      entryPoint,
      {
        [TAGS.entryPoint]: entryPoint,
        [TAGS.step]: step.name,
        [TAGS.cacheKey]: key,
        [TAGS.sourceName]: "ms",
        [TAGS.sourceType]: "LOCAL",
        ...(this.commit ? { [TAGS.gitCommit]: this.commit } : {}),
      },
      this.parentId,
    );
    const metrics = new BufferedMetrics();
    let history: HistoryPoint[] = [];
    try {
      await this.log.params(runId, params);
      const forced = o.noCache === true || (o.force ?? []).includes(step.name);
      const info: EntryDescription = {
        version: code.version,
        codeDigest: code.codeDigest,
        params: bound.keyParams,
        inputs: inputDigests,
        producedByRun: runId,
      };
      let replayed: HistoryPoint[] | undefined;
      const outcome = await this.session.getOrCompute({
        key,
        step: step.name,
        info,
        force: forced,
        signal: o.signal,
        shareable: step.shareable !== false,
        onRemoteBad: (k, problems) =>
          logger.warn(
            { key: k.slice(0, 12), problems },
            `${step.name}: the remote cache's entry does not verify; computing it (the push replaces it)`,
          ),
        stillValid: async (hit) => {
          if (!(await step.stillValid(hit.manifest))) return false;
          try {
            replayed = await readHistory(hit.dir, hit.entry.history);
            return true;
          } catch (error) {
            logger.warn(
              { key: key.slice(0, 12), error: (error as Error).message },
              `${step.name}: the entry's metric history is damaged; recomputing it`,
            );
            return false;
          }
        },
        onWait: (holder, waitMs) =>
          logger.info(
            { pid: holder.pid, hostname: holder.hostname, maxWaitSeconds: waitMs === undefined ? null : Math.round(waitMs / 1000) },
            `${step.name}: ${holder.hostname} pid ${holder.pid} is computing this step; waiting for it ${waitMs === undefined ? "while that process lives" : `at most ${Math.round(waitMs / 1000)} s (its lease)`}`,
          ),
        onDamaged: (k, problems) => logger.warn({ key: k.slice(0, 12), problems }, `${step.name}: cache entry is damaged; recomputing it`),
        compute: async (dir) => {
          if (o.report !== false) this.chartWorker ??= ChartWorker.start();
          logger.info({ key: key.slice(0, 12) }, `${step.name}: computing`);
          await bound.run(
            { logger, metrics, signal: o.signal, progress: o.progress, cacheDir: this.store.root, inputsVerified: true },
            inputs,
            dir,
          );
          this.checkSignal();
          // The history goes into the entry (its digest into entry.json, written at publish), so a hit replays it.
          info.history = await writeHistory(dir, await withFinalMetrics(metrics, dir));
        },
      });
      const small = this.store.smallFiles(key);
      if (outcome.cached) {
        // A hit: link to the run that produced the entry instead of redoing the work.
        logger.info(
          {
            key: key.slice(0, 12),
            producedByRun: outcome.entry.producedByRun,
            source: outcome.source,
            ...(outcome.transfer ? { bytes: outcome.transfer.bytes, transferSeconds: Number(outcome.transfer.seconds.toFixed(2)) } : {}),
          },
          `${step.name}: cached${outcome.source === "remote" ? ` (downloaded from ${this.remote?.url ?? "the remote cache"})` : ""}`,
        );
        await this.log.tags(runId, {
          ...step.tags(outcome.manifest),
          [TAGS.cacheHit]: "true",
          [TAGS.cacheSource]: outcome.source,
          ...(outcome.entry.producedByRun ? { [TAGS.producedBy]: outcome.entry.producedByRun } : {}),
        });
        const now = Date.now();
        const logged = replayed
          ? replay(replayed, now)
          : Object.entries(numericMetrics(outcome.manifest.metrics)).map(([k, value]) => ({ key: k, value, step: 0, timestamp: now }));
        history = logged.map((m) => ({ key: m.key, value: m.value, step: m.step ?? 0, offsetMs: 0 }));
        await this.log.metrics(runId, logged);
        await this.log.artifacts(runId, outcome.dir, (o.logArtifacts ?? "all") === "none" ? "none" : "manifests", small);
      } else {
        const logged = metrics.take();
        history = logged.map((m) => ({ key: m.key, value: m.value, step: m.step ?? 0, offsetMs: 0 }));
        await this.log.metrics(runId, logged);
        await this.log.tags(runId, { ...step.tags(outcome.manifest), [TAGS.cacheHit]: "false", [TAGS.cacheSource]: outcome.source });
        if (outcome.transfer)
          logger.info(
            {
              key: key.slice(0, 12),
              bytes: outcome.transfer.bytes,
              blobs: outcome.transfer.blobs,
              transferSeconds: Number(outcome.transfer.seconds.toFixed(2)),
            },
            `${step.name}: pushed to ${this.remote?.url ?? "the remote cache"}`,
          );
        await this.log.artifacts(runId, outcome.dir, o.logArtifacts ?? "all", small);
      }
      await this.log.end(runId, "FINISHED");
      const seconds = (performance.now() - started) / 1000;
      if (!outcome.cached) logger.info({ seconds: Number(seconds.toFixed(2)) }, `${step.name}: step finished and cached`);
      const outputs: Record<string, unknown> = {};
      for (const [name, kind] of Object.entries(step.outputs))
        outputs[name] = { kind, dir: outcome.dir, digest: outcome.manifest.digest, ...step.describe(outcome.manifest) };
      this.entries.push({ step: step.name, runId, key, dir: outcome.dir, manifest: outcome.manifest });
      const report: StepReport = {
        step: step.name,
        cached: outcome.cached,
        source: outcome.source,
        ...(outcome.transfer ? { remote: outcome.transfer } : {}),
        key,
        runId,
        outputs,
        metrics: outcome.manifest.metrics,
        seconds,
      };
      o.events?.stepFinished?.(report);
      return { report, dir: outcome.dir, manifest: outcome.manifest, history };
    } catch (error) {
      o.events?.stepFailed?.(step.name, error);
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
