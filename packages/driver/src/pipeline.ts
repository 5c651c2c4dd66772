/**
 * `ms run`: the step definitions of `steps.ts` run in order, each behind the content-addressed
 * cache and tracked as a child run of one parent run. The driver knows no step by name: a step's
 * inputs are the outputs of earlier steps matched by artifact kind, its parameters come from its
 * schema, its key, child run and result from step-run.ts (@ms/cache's `cacheKey` and the cache
 * session's get-or-compute), its summary line and entry point from its definition; the run's
 * report is run-report.ts's.
 */
import {
  BadParameterError,
  silentLogger,
  defaultCacheDir,
  type Resolution,
  type ArtifactKind,
  type ArtifactRef,
  type Logger,
  type Step,
} from "@ms/contracts";
import path from "node:path";
import {
  createTracker,
  gitCommit,
  recordUnclosedRuns,
  RunLog,
  TAGS,
  UNCLOSED_RUNS_FILE,
  type LogArtifacts,
  type Run,
  type Tracker,
} from "@ms/tracking";
import { CacheStore, liveOwnerOf, openSession, ownerText, type CacheSession } from "@ms/cache";
import { S3RemoteStore, type RemoteMode } from "@ms/cache-s3";
import type { RunEntry } from "@ms/serve";
import { ChartWorker, type StepHistory } from "@ms/report";
import { foldResolutions, foldSummary, parentParams, type FoldReport } from "./folds.js";
import { logDataset, logFinalModel, type LoggedFinalModel } from "./mlflow-model.js";
import { writeRunReport } from "./run-report.js";
import {
  checkSignal,
  isInterrupted,
  numericMetrics,
  runStep,
  type PipelineEvents,
  type StepReport,
  type StepRunContext,
} from "./step-run.js";
import { PIPELINE } from "./steps.js";

export type { PipelineEvents, StepReport } from "./step-run.js";
export type { FoldReport } from "./folds.js";

export const DEFAULT_DATASET = "ml-latest-small";
export const DEFAULT_EXPERIMENT = "Default";

export interface RunPipelineOptions {
  /** A MovieLens name or `synthetic` (default ml-latest-small). */
  dataset?: string;
  /** A local ratings file instead of a dataset. */
  ratingsCsv?: string;
  /** With split=file: the ratings that test (the `test_ratings` parameter). */
  testRatings?: string;
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
  /** An ed25519 PEM key (default $MS_REMOTE_CACHE_SIGNING_KEY): a private key signs pushed records; only signed records are used. */
  remoteCacheSigningKey?: string;
  /**
   * Environment read for MLflow's project variables (default process.env): under `mlflow run`,
   * `MLFLOW_RUN_ID` is the run to use as the parent and `MLFLOW_EXPERIMENT_ID` the experiment.
   */
  env?: NodeJS.ProcessEnv;
}

export interface PipelineReport {
  runId: string;
  /** The steps of the run (of a k-fold run: its last fold's, whose model `ms recommend` serves). */
  steps: StepReport[];
  /** A k-fold run's folds, each with its steps. */
  folds?: FoldReport[];
  /** A k-fold run's `<step>_<metric>_mean` and `_std` over the folds (std: sample, n - 1). */
  summary?: Record<string, number>;
  /** The run report (report.html), also logged as an artifact of the parent run; absent with `report: false` or when it could not be made. */
  report?: string;
  /** The final model as an MLflow Model (`runs:/<step run>/model`), absent when the run has no servable model. */
  model?: LoggedFinalModel;
}

/** Re-exported from @ms/contracts, where every package's cache location is decided. */
export { defaultCacheDir };

/** The flags that stand for download parameters, merged under `-P` names (a flag wins). */
function withSourceFlags(o: RunPipelineOptions): Map<string, string> {
  const raw = new Map(o.params instanceof Map ? o.params : Object.entries(o.params ?? {}));
  const dataDir = o.dataDir ?? process.env.MS_DATASETS_DIR;
  if (o.dataset !== undefined) raw.set("dataset", o.dataset);
  if (o.ratingsCsv !== undefined) raw.set("ratings_csv", o.ratingsCsv);
  if (o.testRatings !== undefined) raw.set("test_ratings", o.testRatings);
  if (o.url !== undefined) raw.set("url", o.url);
  if (dataDir) raw.set("data_dir", dataDir);
  return raw;
}

/** The shared remote cache of `--remote-cache`, if any. */
function openRemote(o: RunPipelineOptions, logger: Logger): S3RemoteStore | undefined {
  if (!o.remoteCache) return undefined;
  return new S3RemoteStore({
    url: o.remoteCache,
    mode: o.remoteCacheMode,
    required: o.remoteCacheRequired,
    endpoint: o.remoteCacheEndpoint,
    signingKey: o.remoteCacheSigningKey,
    logger,
    env: o.env ?? process.env,
  });
}

/** A RUNNING parent that another live ms process owns is never adopted: two runs would write into one parent. */
function refuseLiveOwner(run: Run): void {
  const live = liveOwnerOf(run.tags[TAGS.owner]);
  if (live)
    throw new BadParameterError(
      "MLFLOW_RUN_ID",
      `run ${run.info.runId} is the parent of another ms run still in progress (${live}); unset MLFLOW_RUN_ID to start a new run`,
    );
}

/** The parent run: MLflow's (`MLFLOW_RUN_ID`, under `mlflow run`) or a new one. */
interface Parent {
  log: RunLog;
  runId: string;
  /** Whether it is MLflow's run (its params are completed, not logged anew). */
  adopted: boolean;
}

class Pipeline {
  readonly store: CacheStore;
  private remote: S3RemoteStore | undefined;
  private session!: CacheSession;
  /** Started by the first step computed (a fully cached run draws its report from the memo). */
  private chartWorker: ChartWorker | undefined;
  private commit: string | undefined;
  private readonly logger: Logger;
  /** The metric histories of the steps run so far (for the report). */
  private readonly histories: StepHistory[] = [];
  /** The entries of the steps run so far (for the report). */
  private readonly entries: RunEntry[] = [];

  constructor(private readonly o: RunPipelineOptions) {
    this.store = new CacheStore(o.cacheDir ?? defaultCacheDir());
    this.logger = o.logger ?? silentLogger();
  }

  async run(): Promise<PipelineReport> {
    // Parameters are checked before anything is created (every fold's): a bad one leaves no run behind.
    const plan = foldResolutions(this.o.steps ?? PIPELINE, withSourceFlags(this.o));
    this.remote = openRemote(this.o, this.logger);
    await this.store.ensureLayout();
    const leftovers = await this.store.cleanLeftovers();
    if (leftovers.tmp.length || leftovers.locks.length)
      this.logger.info({ tmp: leftovers.tmp.length, locks: leftovers.locks.length }, "cache: removed leftovers of killed runs");
    this.session = openSession(this.store, { remote: this.remote });
    const tracker = createTracker(this.o.trackingUri, { logger: this.logger });
    try {
      return await this.tracked(tracker, plan);
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

  private async openParent(tracker: Tracker): Promise<Parent> {
    const o = this.o;
    const env = o.env ?? process.env;
    const adopted = env.MLFLOW_RUN_ID?.trim() || undefined;
    const commitTag: Record<string, string> = this.commit ? { [TAGS.gitCommit]: this.commit } : {};
    if (adopted) {
      // Under `mlflow run` the project's run already exists: it is our parent, not a second top-level run.
      const log = await RunLog.forRun(tracker, adopted, this.logger, refuseLiveOwner);
      this.logger.info({ runId: adopted }, `tracking into the run MLflow created (MLFLOW_RUN_ID=${adopted})`);
      await log.tags(adopted, { [TAGS.sourceName]: "ms", [TAGS.owner]: ownerText(), ...commitTag });
      return { log, runId: adopted, adopted: true };
    }
    const experimentId = o.experiment === undefined ? env.MLFLOW_EXPERIMENT_ID?.trim() || undefined : undefined;
    const log = experimentId
      ? await RunLog.forExperiment(tracker, experimentId, this.logger)
      : await RunLog.open(tracker, o.experiment ?? DEFAULT_EXPERIMENT, this.logger);
    const tags = {
      [TAGS.entryPoint]: "main",
      [TAGS.sourceName]: "ms",
      [TAGS.sourceType]: "LOCAL",
      [TAGS.owner]: ownerText(),
      ...commitTag,
    };
    return { log, runId: await log.start("ms-run", tags), adopted: false };
  }

  private async tracked(tracker: Tracker, plan: { resolutions: Resolution[]; kfold: boolean }): Promise<PipelineReport> {
    this.commit = await gitCommit(this.o.cwd ?? process.cwd());
    const parent = await this.openParent(tracker);
    const { log, runId } = parent;
    const resolution = plan.resolutions[plan.resolutions.length - 1];
    try {
      const params = parentParams(resolution, plan.kfold);
      await (parent.adopted ? log.newParams(runId, params) : log.params(runId, params));
      const folds = plan.kfold ? await this.runFolds(parent, plan.resolutions) : undefined;
      const steps = folds ? folds[folds.length - 1].steps : await this.runSteps(parent, resolution, runId);
      const summary = folds ? foldSummary(folds) : undefined;
      if (summary)
        await log.metrics(
          runId,
          Object.entries(summary).map(([key, value]) => ({ key, value, step: 0, timestamp: Date.now() })),
        );
      checkSignal(this.o.signal);
      const model = await this.logModel(tracker, log, runId);
      checkSignal(this.o.signal);
      const report =
        this.o.report === false
          ? undefined
          : await writeRunReport({
              store: this.store,
              tracker,
              log,
              logger: this.logger,
              report: { runId, steps },
              params,
              histories: this.histories,
              entries: this.entries,
              chartWorker: this.chartWorker,
            });
      await log.end(runId, "FINISHED");
      return { runId, steps, ...(folds && summary ? { folds, summary } : {}), ...(report ? { report } : {}), ...(model ? { model } : {}) };
    } catch (error) {
      await log.endQuietly(runId, isInterrupted(error, this.o.signal) ? "KILLED" : "FAILED");
      throw error;
    }
  }

  /** The final model as an MLflow Model, and the ratings as the dataset input of the parent and of the model's run. */
  private async logModel(tracker: Tracker, log: RunLog, runId: string): Promise<LoggedFinalModel | undefined> {
    const skip = this.o.logArtifacts === "none";
    if (skip) this.logger.debug("--log-artifacts none: the model is not logged as an MLflow Model");
    const model = skip ? undefined : await logFinalModel({ tracker, log, logger: this.logger, parentRunId: runId, entries: this.entries });
    await logDataset(tracker, this.entries, model ? [runId, model.runId] : [runId], this.logger);
    return model;
  }

  /**
   * Each fold in turn, its step runs grouped under a child run of the parent tagged with the fold;
   * the report and `ms recommend` use the last fold's entries.
   */
  private async runFolds(parent: Parent, resolutions: readonly Resolution[]): Promise<FoldReport[]> {
    const folds: FoldReport[] = [];
    for (const [i, resolution] of resolutions.entries()) {
      const fold = i + 1;
      const tags = { [TAGS.sourceName]: "ms", [TAGS.fold]: String(fold) };
      const runId = await parent.log.start(`fold-${fold}`, tags, parent.runId);
      try {
        await parent.log.params(runId, { fold });
        this.entries.length = 0;
        this.histories.length = 0;
        this.logger.info({ fold, of: resolutions.length }, `kfold: fold ${fold} of ${resolutions.length}`);
        const steps = await this.runSteps(parent, resolution, runId);
        await parent.log.end(runId, "FINISHED");
        folds.push({ fold, runId, steps });
      } catch (error) {
        await parent.log.endQuietly(runId, isInterrupted(error, this.o.signal) ? "KILLED" : "FAILED");
        throw error;
      }
    }
    return folds;
  }

  /** Each step on the outputs of earlier steps, matched by kind, as child runs of `groupId`, which gets each step's final metrics. */
  private async runSteps(parent: Parent, resolution: Resolution, groupId: string): Promise<StepReport[]> {
    const ctx = this.stepContext(parent, groupId);
    const steps: StepReport[] = [];
    /** The latest output of each kind: what a later step's input of that kind reads. */
    const produced = new Map<ArtifactKind, ArtifactRef>();
    for (const bound of resolution.steps) {
      const inputs: Record<string, ArtifactRef> = {};
      for (const [name, kind] of Object.entries(bound.step.inputs)) {
        const ref = produced.get(kind);
        if (!ref) throw new Error(`step ${bound.step.name} needs a ${kind} artifact that no earlier step produces`);
        inputs[name] = ref;
      }
      const { report, dir, manifest, history } = await runStep(ctx, bound, inputs);
      steps.push(report);
      this.histories.push({ step: bound.step.name, points: history });
      this.entries.push({ step: report.step, runId: report.runId, key: report.key, dir, manifest });
      // The parent (a fold's run) carries every step's final metrics under step-prefixed names, for MLflow's compare view.
      const now = Date.now();
      await parent.log.metrics(
        groupId,
        Object.entries(numericMetrics(report.metrics)).map(([k, value]) => ({
          key: `${bound.step.name}_${k}`,
          value,
          step: 0,
          timestamp: now,
        })),
      );
      for (const kind of Object.values(bound.step.outputs)) produced.set(kind, { kind, dir, digest: manifest.digest });
    }
    return steps;
  }

  private stepContext(parent: Parent, groupId: string): StepRunContext {
    const o = this.o;
    return {
      store: this.store,
      session: this.session,
      log: parent.log,
      parentId: groupId,
      commit: this.commit,
      logger: this.logger,
      remoteUrl: this.remote?.url,
      noCache: o.noCache === true,
      force: o.force ?? [],
      logArtifacts: o.logArtifacts ?? "all",
      progress: o.progress,
      signal: o.signal,
      events: o.events,
      beforeCompute: () => {
        if (o.report !== false) this.chartWorker ??= ChartWorker.start();
      },
    };
  }
}

/** Runs the pipeline; resolves to the report `ms run --json` prints. */
export function runPipeline(options: RunPipelineOptions = {}): Promise<PipelineReport> {
  return new Pipeline(options).run();
}
