/**
 * One step of `ms run`: its key (@ms/cache's `cacheKey` over its code identity, parameters and
 * input digests), its child run in the tracking store (named by the step's `entryPoint`), and its
 * result from the cache session's get-or-compute. A hit replays the metric history its entry keeps
 * and links the run that produced it; a computed result logs what the step reported and writes
 * that history into the entry. Steps are known only through their definitions (`Step`).
 */
import {
  InterruptedError,
  readManifest,
  type ArtifactRef,
  type BoundStep,
  type Digest,
  type Logger,
  type Manifest,
  type ManifestMetrics,
  type Step,
  type StepOutput,
} from "@ms/contracts";
import {
  cacheKey,
  codeIdentity,
  type CacheHit,
  type CacheOutcome,
  type CacheSession,
  type CacheSource,
  type CacheStore,
  type EntryDescription,
  type RemoteTransfer,
} from "@ms/cache";
import {
  BufferedMetrics,
  readHistory,
  replay,
  TAGS,
  writeHistory,
  type HistoryPoint,
  type LogArtifacts,
  type MetricInput,
  type RunLog,
} from "@ms/tracking";

export interface StepReport {
  step: string;
  cached: boolean;
  /** local or remote for a hit, computed otherwise. */
  source: CacheSource;
  /** Bytes and seconds moved to or from the remote cache (a remote hit, or the push of a computed result). */
  remote?: RemoteTransfer;
  key: string;
  runId: string;
  /** Each output by name: its artifact reference and what the step's `describe` says of it. */
  outputs: Record<string, StepOutput>;
  /** The final metrics its manifest records. */
  metrics: ManifestMetrics;
  seconds: number;
}

export interface PipelineEvents {
  stepStarted?(step: string): void;
  stepFinished?(report: StepReport): void;
  stepFailed?(step: string, error: unknown): void;
}

/** What running a step needs from the pipeline run it belongs to. */
export interface StepRunContext {
  store: CacheStore;
  session: CacheSession;
  log: RunLog;
  parentId: string;
  /** The checked-out commit, for the git tag. */
  commit: string | undefined;
  logger: Logger;
  /** The remote cache's URL, for the log lines. */
  remoteUrl: string | undefined;
  /** Recompute every step. */
  noCache: boolean;
  /** Recompute these steps. */
  force: readonly string[];
  logArtifacts: LogArtifacts;
  progress?: boolean;
  signal?: AbortSignal;
  events?: PipelineEvents;
  /** Called when a step is about to compute (the report's chart worker starts then). */
  beforeCompute(): void;
}

/** A step's result as the pipeline goes on with it. */
export interface StepRun {
  report: StepReport;
  dir: string;
  manifest: Manifest;
  /** The metrics its child run logged, for the report's curves. */
  history: HistoryPoint[];
}

export function numericMetrics(metrics: Readonly<Record<string, unknown>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(metrics)) if (typeof v === "number") out[k] = v;
  return out;
}

export function isInterrupted(error: unknown, signal: AbortSignal | undefined): boolean {
  return error instanceof InterruptedError || signal?.aborted === true;
}

export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError("interrupted");
}

/** Runs one bound step on its inputs: key, child run, get-or-compute, tracking. */
export async function runStep(ctx: StepRunContext, bound: BoundStep, inputs: Record<string, ArtifactRef>): Promise<StepRun> {
  checkSignal(ctx.signal);
  const step = bound.step;
  const started = performance.now();
  ctx.events?.stepStarted?.(step.name);
  const { key, info } = await keyOf(bound, inputs);
  const logger = ctx.logger.child({ step: step.name });
  const runId = await startChildRun(ctx, step, key);
  const metrics = new BufferedMetrics();
  try {
    await ctx.log.params(runId, bound.params);
    const { outcome, replayed } = await getOrCompute(ctx, bound, inputs, { key, info: { ...info, producedByRun: runId }, logger, metrics });
    const history = outcome.cached
      ? await logHit(ctx, runId, step, { outcome, replayed, key, logger })
      : await logComputed(ctx, runId, step, { outcome, metrics, key, logger });
    await ctx.log.end(runId, "FINISHED");
    const seconds = (performance.now() - started) / 1000;
    if (!outcome.cached) logger.info({ seconds: Number(seconds.toFixed(2)) }, `${step.name}: step finished and cached`);
    const report = stepReport(step, outcome, { key, runId, seconds });
    ctx.events?.stepFinished?.(report);
    return { report, dir: outcome.dir, manifest: outcome.manifest, history };
  } catch (error) {
    ctx.events?.stepFailed?.(step.name, error);
    await ctx.log.metrics(runId, metrics.take()).catch(() => undefined);
    await ctx.log.endQuietly(runId, isInterrupted(error, ctx.signal) ? "KILLED" : "FAILED");
    throw error;
  }
}

/** The step's cache key and what its entry records about it. */
async function keyOf(
  bound: BoundStep,
  inputs: Record<string, ArtifactRef>,
): Promise<{ key: string; info: Omit<EntryDescription, "producedByRun"> }> {
  const step = bound.step;
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
  return { key, info: { version: code.version, codeDigest: code.codeDigest, params: bound.keyParams, inputs: inputDigests } };
}

/** The step's child run, named and tagged as the MLproject entry point it stands for. */
function startChildRun(ctx: StepRunContext, step: Step, key: string): Promise<string> {
  return ctx.log.start(
    step.entryPoint,
    {
      [TAGS.entryPoint]: step.entryPoint,
      [TAGS.step]: step.name,
      [TAGS.cacheKey]: key,
      [TAGS.sourceName]: "ms",
      [TAGS.sourceType]: "LOCAL",
      ...(ctx.commit ? { [TAGS.gitCommit]: ctx.commit } : {}),
    },
    ctx.parentId,
  );
}

interface Attempt {
  key: string;
  info: EntryDescription;
  logger: Logger;
  metrics: BufferedMetrics;
}

/** The session's get-or-compute for the step; a hit comes with the metric history its entry keeps. */
async function getOrCompute(
  ctx: StepRunContext,
  bound: BoundStep,
  inputs: Record<string, ArtifactRef>,
  { key, info, logger, metrics }: Attempt,
): Promise<{ outcome: CacheOutcome; replayed: HistoryPoint[] | undefined }> {
  const step = bound.step;
  let replayed: HistoryPoint[] | undefined;
  const stillValid = async (hit: CacheHit) => {
    if (!(await step.stillValid(hit.manifest))) return false;
    try {
      replayed = await readHistory(hit.dir, hit.entry.history);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.warn({ key: key.slice(0, 12), error: message }, `${step.name}: the entry's metric history is damaged; recomputing it`);
      return false;
    }
  };
  const outcome = await ctx.session.getOrCompute({
    key,
    step: step.name,
    info,
    force: ctx.noCache || ctx.force.includes(step.name),
    signal: ctx.signal,
    shareable: step.shareable !== false,
    onRemoteBad: (k, problems) =>
      logger.warn(
        { key: k.slice(0, 12), problems },
        `${step.name}: the remote cache's entry does not verify; computing it (the push replaces it)`,
      ),
    stillValid,
    onWait: (holder, waitMs) =>
      logger.info(
        { pid: holder.pid, hostname: holder.hostname, maxWaitSeconds: waitMs === undefined ? null : Math.round(waitMs / 1000) },
        `${step.name}: ${holder.hostname} pid ${holder.pid} is computing this step; waiting for it ${waitMs === undefined ? "while that process lives" : `at most ${Math.round(waitMs / 1000)} s (its lease)`}`,
      ),
    onDamaged: (k, problems) => logger.warn({ key: k.slice(0, 12), problems }, `${step.name}: cache entry is damaged; recomputing it`),
    compute: async (dir) => {
      ctx.beforeCompute();
      logger.info({ key: key.slice(0, 12) }, `${step.name}: computing`);
      await bound.run(
        { logger, metrics, signal: ctx.signal, progress: ctx.progress, cacheDir: ctx.store.root, inputsVerified: true },
        inputs,
        dir,
      );
      checkSignal(ctx.signal);
      // The history goes into the entry (its digest into entry.json, written at publish), so a hit replays it.
      info.history = await writeHistory(dir, await withFinalMetrics(metrics, dir));
    },
  });
  return { outcome, replayed };
}

/**
 * Adds to the buffered metrics the manifest's final numeric metrics the step did not report
 * itself, so a computed run and every later hit log the same set.
 */
async function withFinalMetrics(metrics: BufferedMetrics, dir: string): Promise<MetricInput[]> {
  const manifest = await readManifest(dir);
  const seen = new Set(Object.keys(metrics.latest));
  for (const [k, v] of Object.entries(numericMetrics(manifest.metrics))) if (!seen.has(k) && Number.isFinite(v)) metrics.metric(k, v);
  return metrics.peek();
}

const asHistory = (logged: readonly MetricInput[]): HistoryPoint[] =>
  logged.map((m) => ({ key: m.key, value: m.value, step: m.step ?? 0, offsetMs: 0 }));

/** A hit: link to the run that produced the entry instead of redoing the work, and replay its metrics. */
async function logHit(
  ctx: StepRunContext,
  runId: string,
  step: Step,
  { outcome, replayed, key, logger }: { outcome: CacheOutcome; replayed: HistoryPoint[] | undefined; key: string; logger: Logger },
): Promise<HistoryPoint[]> {
  const transfer = outcome.transfer ? { bytes: outcome.transfer.bytes, transferSeconds: Number(outcome.transfer.seconds.toFixed(2)) } : {};
  logger.info(
    { key: key.slice(0, 12), producedByRun: outcome.entry.producedByRun, source: outcome.source, ...transfer },
    `${step.name}: cached${outcome.source === "remote" ? ` (downloaded from ${ctx.remoteUrl ?? "the remote cache"})` : ""}`,
  );
  await ctx.log.tags(runId, {
    ...step.tags(outcome.manifest),
    [TAGS.cacheHit]: "true",
    [TAGS.cacheSource]: outcome.source,
    ...(outcome.entry.producedByRun ? { [TAGS.producedBy]: outcome.entry.producedByRun } : {}),
  });
  const now = Date.now();
  const logged = replayed
    ? replay(replayed, now)
    : Object.entries(numericMetrics(outcome.manifest.metrics)).map(([k, value]) => ({ key: k, value, step: 0, timestamp: now }));
  await ctx.log.metrics(runId, logged);
  const small = ctx.store.smallFiles(key);
  await ctx.log.artifacts(runId, outcome.dir, ctx.logArtifacts === "none" ? "none" : "manifests", small);
  return asHistory(logged);
}

/** A computed result: log what the step reported, and what was pushed to the remote cache. */
async function logComputed(
  ctx: StepRunContext,
  runId: string,
  step: Step,
  { outcome, metrics, key, logger }: { outcome: CacheOutcome; metrics: BufferedMetrics; key: string; logger: Logger },
): Promise<HistoryPoint[]> {
  const logged = metrics.take();
  await ctx.log.metrics(runId, logged);
  await ctx.log.tags(runId, { ...step.tags(outcome.manifest), [TAGS.cacheHit]: "false", [TAGS.cacheSource]: outcome.source });
  if (outcome.transfer)
    logger.info(
      {
        key: key.slice(0, 12),
        bytes: outcome.transfer.bytes,
        blobs: outcome.transfer.blobs,
        transferSeconds: Number(outcome.transfer.seconds.toFixed(2)),
      },
      `${step.name}: pushed to ${ctx.remoteUrl ?? "the remote cache"}`,
    );
  await ctx.log.artifacts(runId, outcome.dir, ctx.logArtifacts, ctx.store.smallFiles(key));
  return asHistory(logged);
}

function stepReport(step: Step, outcome: CacheOutcome, run: { key: string; runId: string; seconds: number }): StepReport {
  const outputs: Record<string, StepOutput> = {};
  for (const [name, kind] of Object.entries(step.outputs))
    outputs[name] = { kind, dir: outcome.dir, digest: outcome.manifest.digest, ...step.describe(outcome.manifest) };
  return {
    step: step.name,
    cached: outcome.cached,
    source: outcome.source,
    ...(outcome.transfer ? { remote: outcome.transfer } : {}),
    key: run.key,
    runId: run.runId,
    outputs,
    metrics: outcome.manifest.metrics,
    seconds: run.seconds,
  };
}
