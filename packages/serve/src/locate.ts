/**
 * Finding a run's models: the latest finished `ms run` in the tracking store (or the one asked
 * for), and the cache entries its child runs name by key, each verified as a cache hit would be.
 * A k-fold run's step runs are grouped under one child run per fold: the last fold's are used,
 * or the fold of the run asked for.
 * The cache is given (an `EntryStore`), not opened here. `modelDirs` knows which artifact kinds
 * hold which model kind: that is what serving exposes.
 */
import * as v from "valibot";
import { BadParameterError, CorruptArtifactError, MissingArtifactError, type Logger, type Manifest } from "@ms/contracts";
import { createTracker, TAGS, type Run, type SkippedRun, type Tracker } from "@ms/tracking";
import { resolveModelUri, type ResolvedModelUri } from "./model-uri.js";
import type { ModelDirs, ModelKind } from "./serve.js";

/** A finished run's step entry as the cache checks it (CacheStore's `checkEntry` has this shape). */
export type EntryCheck =
  | { status: "hit"; dir: string; manifest: Manifest }
  | { status: "damaged"; problems: string[] }
  | { status: "missing" | "busy" };

/**
 * Where a run's entries are looked up by cache key. The cache package owns the layout; serving
 * only asks it (so @ms/serve does not depend on the cache code).
 */
export interface EntryStore {
  /** The cache's root, named in messages. */
  readonly root: string;
  /** Where the entry of `key` is (or would be), named in messages. */
  entryDir(key: string): string;
  /** The entry of `key`, verified as a cache hit is. */
  checkEntry(key: string): Promise<EntryCheck>;
  /**
   * Protects the entry of `key` from `ms cache gc` until the caller is done reading (a lease, as a
   * run holds); called before the entry is checked. Absent: nothing is protected.
   */
  protect?(key: string): Promise<unknown>;
}

export interface LocateOptions {
  /** The cache holding the run's entries. */
  entries: EntryStore;
  trackingUri?: string;
  /** A parent run id (a step's child run id is taken to mean its parent); default the latest finished run. */
  runId?: string;
  /**
   * A model URI instead of `runId`: `runs:/RUN_ID/model`, or `models:/NAME@ALIAS` / `models:/NAME/VERSION`
   * of the tracking server's registry (resolved to the run that produced the version), or one
   * `resolveModelUri` already resolved (the caller then knows which version answered).
   */
  modelUri?: string | ResolvedModelUri;
  /** Only look in this experiment (by name). */
  experiment?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

/** One step's published entry, as a run's child run names it. */
export interface RunEntry {
  step: string;
  runId: string;
  key: string;
  dir: string;
  manifest: Manifest;
}

export interface LocatedRun {
  runId: string;
  experimentId: string;
  entries: RunEntry[];
  /** What `modelUri` resolved to, when one was given. */
  modelUri?: ResolvedModelUri;
}

/**
 * The latest finished `ms run` parent run (newest start time) over the experiments asked for. A run
 * the store could not read is left out, and then the answer says which run it comes from and why
 * newer ones were passed over, so a damaged newest run is never silently replaced by an older one.
 */
async function latestRun(tracker: Tracker, experiment: string | undefined, logger?: Logger): Promise<Run> {
  const experiments = experiment
    ? [await tracker.getExperimentByName(experiment)].filter((e) => e !== undefined)
    : await tracker.listExperiments();
  if (experiment && !experiments.length)
    throw new BadParameterError("--experiment", `no experiment named ${JSON.stringify(experiment)} in ${tracker.uri}`);
  let best: Run | undefined;
  const skipped: SkippedRun[] = [];
  for (const exp of experiments) {
    if (exp.lifecycleStage !== "active") continue;
    const page = await tracker.searchRuns({
      experimentIds: [exp.experimentId],
      tags: { [TAGS.sourceName]: "ms", [TAGS.entryPoint]: "main" },
      status: "FINISHED",
      maxResults: 50,
    });
    const top = page.runs.find((r) => !r.tags[TAGS.parent]);
    if (top && (!best || top.info.startTime > best.info.startTime)) best = top;
    skipped.push(...(page.skipped ?? []));
  }
  if (best && skipped.length) {
    logger?.warn(
      { answering: best.info.runId, skipped },
      `answering from run ${best.info.runId}, the newest finished run that can be read; passed over ${skipped.map((s) => `run ${s.runId} (${s.reason})`).join("; ")}; give --run RUN_ID to choose`,
    );
  }
  if (!best)
    throw new MissingArtifactError(
      `no finished ms run in ${tracker.uri}${experiment ? ` (experiment ${experiment})` : ""}; run 'ms run' first, or give --tracking-uri`,
    );
  return best;
}

/** The child runs of `runId`, newest first. */
async function childRuns(tracker: Tracker, experimentId: string, runId: string): Promise<Run[]> {
  const children: Run[] = [];
  let pageToken: string | undefined;
  do {
    const page = await tracker.searchRuns({ experimentIds: [experimentId], tags: { [TAGS.parent]: runId }, maxResults: 100, pageToken });
    children.push(...page.runs);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return children;
}

/** Finds a run and its step entries in the cache, each verified (missing: exit 4; damaged: exit 5). */
export async function locateRun(o: LocateOptions): Promise<LocatedRun> {
  if (o.modelUri !== undefined && o.runId !== undefined)
    throw new BadParameterError("--model-uri", "give either --model-uri or --run, not both");
  const modelUri = typeof o.modelUri === "string" ? await resolveModelUri(o.modelUri, o) : o.modelUri;
  const asked = modelUri?.runId ?? o.runId;
  const flag = modelUri ? "--model-uri" : "--run";
  const named = modelUri ? `${modelUri.uri}: run ${asked}` : `run ${asked}`;
  const tracker = createTracker(o.trackingUri, { logger: o.logger, env: o.env });
  let parent = asked
    ? await tracker.getRun(asked).catch((error: unknown) =>
        // A damaged run is said to be damaged (exit 5, naming its file): --run never falls back to another run.
        Promise.reject(
          error instanceof CorruptArtifactError
            ? error
            : new BadParameterError(flag, `${named} is not in ${tracker.uri} (${(error as Error).message})`),
        ),
      )
    : await latestRun(tracker, o.experiment, o.logger);
  let askedFold: string | undefined;
  while (parent.tags[TAGS.parent]) {
    if (parent.tags[TAGS.fold]) askedFold = parent.info.runId;
    parent = await tracker.getRun(parent.tags[TAGS.parent]);
  }
  const runId = parent.info.runId;
  if (asked && parent.info.status !== "FINISHED")
    throw new BadParameterError(flag, `${modelUri ? `${modelUri.uri}: ` : ""}run ${runId} is ${parent.info.status}, not FINISHED`);
  let children = await childRuns(tracker, parent.info.experimentId, runId);
  const folds = children.filter((c) => c.tags[TAGS.fold] !== undefined);
  if (folds.length) {
    const fold =
      folds.find((f) => f.info.runId === askedFold) ??
      folds.reduce((a, b) => (Number(b.tags[TAGS.fold]) > Number(a.tags[TAGS.fold]) ? b : a));
    children = await childRuns(tracker, parent.info.experimentId, fold.info.runId);
  }
  const store = o.entries;
  const entries: RunEntry[] = [];
  for (const child of children.reverse()) {
    const key = child.tags[TAGS.cacheKey];
    const step = child.tags[TAGS.step];
    if (!key || !step) continue;
    await store.protect?.(key);
    const check = await store.checkEntry(key);
    if (check.status === "damaged")
      throw new CorruptArtifactError(
        `run ${runId}: the ${step} entry ${store.entryDir(key)} is damaged (${check.problems.join("; ")}); rerun 'ms run' to recompute it`,
      );
    if (check.status !== "hit")
      throw new MissingArtifactError(
        `run ${runId}: its ${step} entry ${store.entryDir(key)} is not in the cache ${store.root} (removed by 'ms cache gc', or another --cache-dir?); rerun 'ms run' with the same parameters to rebuild it`,
      );
    entries.push({ step, runId: child.info.runId, key, dir: check.dir, manifest: check.manifest });
  }
  if (!entries.length) throw new MissingArtifactError(`run ${runId} has no step runs with cache keys in ${tracker.uri}; is it an ms run?`);
  return { runId, experimentId: parent.info.experimentId, entries, ...(modelUri ? { modelUri } : {}) };
}

/** The keras model's record of the factors it was trained on (absent in a damaged manifest: no entry matches). */
const TrainedOn = v.object({ factors: v.optional(v.object({ digest: v.optional(v.string()) })) });

/** Where a run's model of `kind` and the data it was made from are. */
export interface RunModelDirs extends ModelDirs {
  ratings: string;
  /** The download entry (the release's files, for titles), when the run has one. */
  raw?: string;
}

/** Where a run's model of `kind`, its factors and its ratings are. */
export function modelDirs(run: LocatedRun, kind: ModelKind): RunModelDirs {
  const ofKind = (k: string) => run.entries.filter((e) => e.manifest.kind === k);
  const ratings = ofKind("ratings").at(-1);
  if (!ratings) throw new MissingArtifactError(`run ${run.runId} has no ratings entry`);
  const raw = ofKind("raw-dataset").at(-1)?.dir;
  if (kind === "als") {
    const factors = run.entries.find((e) => e.step === "als" && e.manifest.kind === "factors") ?? ofKind("factors").at(-1);
    if (!factors) throw new MissingArtifactError(`run ${run.runId} has no ALS factors entry`);
    return { factors: factors.dir, ratings: ratings.dir, raw };
  }
  const model = ofKind("keras-model").at(-1);
  if (!model) throw new MissingArtifactError(`run ${run.runId} has no keras model entry`);
  // The factors the network was trained on, whichever step of the run produced them.
  const trainedOn = v.safeParse(TrainedOn, model.manifest.details);
  const wanted = trainedOn.success ? trainedOn.output.factors?.digest : undefined;
  const factors = ofKind("factors").find((e) => e.manifest.digest === wanted);
  if (!factors)
    throw new MissingArtifactError(
      `run ${run.runId}: no entry of the run holds the factors ${String(wanted)} its keras model was trained on`,
    );
  return { factors: factors.dir, model: model.dir, ratings: ratings.dir, raw };
}
