/**
 * Recommendations for many users in one process: the run is located, its ratings read and indexed
 * once (`buildHistory`), its model opened once, and the users answered in blocks, each row handed
 * to a sink as soon as its block is scored. The sink is awaited, so a slow consumer (a pipe that
 * is full) holds the batch back instead of letting rows pile up in memory. A user the model cannot
 * answer is a row with an `error`, not a failure of the batch.
 */
import { checkJson, CorruptArtifactError, InterruptedError, MissingArtifactError, type SplitSpec } from "@ms/contracts";
import { FactorsDetailsSchema, splitOfFactors } from "@ms/als";
import { readMovieTitles, readRatingsColumns, readRawDataset } from "@ms/etl";
import { openRanker, RANKER_KIND } from "@ms/rank";
import { buildHistory, type RunHistory } from "./history.js";
import { locateRun, modelDirs, type LocatedRun, type LocateOptions } from "./locate.js";
import {
  popularityRecommender,
  rankerRecommender,
  ratingRecommender,
  type ListOptions,
  type Reason,
  type RecommendKind,
  type Recommender,
} from "./recommenders.js";
import { kerasServing, openModel } from "./serve.js";

export interface BatchRecommendation {
  movieId: number;
  score: number;
  title: string | null;
  /** The user's rated movies that drove the score, where the model gives them. */
  reasons?: (Reason & { title: string | null })[];
}

/** One user's answer: the list, or why there is none. */
export type BatchRow = { userId: number; recommendations: BatchRecommendation[] } | { userId: number; error: string };

export interface BatchOptions extends LocateOptions, Partial<ListOptions> {
  /** Default: the run's ranker; without one, its keras model (its ALS model when keras cannot score new pairs). */
  model?: RecommendKind;
  /** The users to answer, in this order; `all`: every user of the run's training part, ascending. */
  users: ArrayLike<number> | "all";
  /** Checked between blocks: an abort ends the batch with an InterruptedError. */
  signal?: AbortSignal;
}

/** What the batch answered from, known before the first row (said on stderr by the CLI). */
export interface BatchStart {
  runId: string;
  model: RecommendKind;
  /** The model's artifact directory. */
  dir: string;
  users: number;
}

export interface BatchSummary extends BatchStart {
  /** Rows with an error. */
  failed: number;
}

/** Scores are rounded to 6 significant digits: enough to order any list, short on the wire. */
export function roundScore(x: number): number {
  return Number(x.toPrecision(6));
}

/**
 * A score as published: never NaN or Infinity (a model that gives one is damaged); a rating
 * model's predicted rating to 4 decimals, as `ms predict` prints it, other scores to 6 digits.
 */
function published(x: number, r: Recommender, userId: number, movieId: number): number {
  if (!Number.isFinite(x)) throw new CorruptArtifactError(`${r.dir}: the ${r.kind} model scored (user ${userId}, movie ${movieId}) ${x}`);
  return r.kind === "als" || r.kind === "keras" ? Number(x.toFixed(4)) : roundScore(x);
}

/** The split the run's ALS factors were fitted with (every run has them; later steps reuse it). */
export function splitOfRun(run: LocatedRun): SplitSpec {
  const entry =
    run.entries.find((e) => e.step === "als" && e.manifest.kind === "factors") ?? run.entries.find((e) => e.manifest.kind === "factors");
  if (!entry) throw new MissingArtifactError(`run ${run.runId} has no ALS factors entry, which records its split`);
  return splitOfFactors(checkJson(entry.manifest.details, FactorsDetailsSchema, `${entry.dir}/manifest.json: details`));
}

/** The model a run answers with when none is asked for: its ranker, else keras (or ALS when keras cannot score new pairs). */
async function defaultKind(run: LocatedRun, o: LocateOptions): Promise<RecommendKind> {
  if (run.entries.some((e) => e.manifest.kind === RANKER_KIND)) return "rank";
  const keras = run.entries.filter((e) => e.manifest.kind === "keras-model").at(-1);
  if (keras && (await kerasServing(keras.dir)).servable) return "keras";
  o.logger?.warn({ run: run.runId }, "the run has no ranker and its keras model cannot score new pairs; using its ALS model");
  return "als";
}

async function titlesOf(raw: string | undefined): Promise<Map<number, string> | undefined> {
  if (!raw) return undefined;
  const record = await readRawDataset(raw);
  return (await readMovieTitles(record.ratingsFile))?.titles;
}

/** Opens the recommender of `kind` over the run's history. */
async function openRecommender(kind: RecommendKind, run: LocatedRun, history: RunHistory, o: ListOptions): Promise<Recommender> {
  if (kind === "popularity") return popularityRecommender(history, run.runId, modelDirs(run, "als").ratings, o);
  if (kind === "rank") {
    const entry = run.entries.filter((e) => e.manifest.kind === RANKER_KIND).at(-1);
    if (!entry)
      throw new MissingArtifactError(
        `run ${run.runId} has no ranker entry (a run from before the rank step); rerun 'ms run', or use --model keras, als or popularity`,
      );
    return rankerRecommender(await openRanker(entry.dir), kind, entry.dir, history, run.runId, o);
  }
  const model = await openModel(kind, modelDirs(run, kind));
  return ratingRecommender(model, run.runId, history, o);
}

/** Reads the run's ratings, indexes them, and opens its model: everything the batch holds in memory. */
async function prepare(o: BatchOptions, list: ListOptions) {
  const t0 = performance.now();
  const secs = (from: number, to: number) => Number(((to - from) / 1000).toFixed(3));
  const run = await locateRun(o);
  const kind = o.model ?? (await defaultKind(run, o));
  const dirs = modelDirs(run, "als");
  const t1 = performance.now();
  const [ratings, titles] = await Promise.all([readRatingsColumns(dirs.ratings), titlesOf(dirs.raw)]);
  const t2 = performance.now();
  const history = buildHistory(ratings, splitOfRun(run));
  const t3 = performance.now();
  const recommender = await openRecommender(kind, run, history, list);
  o.logger?.debug(
    { locate: secs(t0, t1), read: secs(t1, t2), index: secs(t2, t3), open: secs(t3, performance.now()), ratings: ratings.rows },
    "batch ready (seconds per phase)",
  );
  return { run, kind, history, titles, recommender };
}

/**
 * Answers `o.users` with the run's model, handing each user's row to `sink` in order (awaited:
 * back-pressure). `start` hears which run and model answer before the first row.
 */
export async function recommendBatch(
  o: BatchOptions,
  sink: (row: BatchRow) => void | Promise<void>,
  start?: (info: BatchStart) => void | Promise<void>,
): Promise<BatchSummary> {
  const list: ListOptions = {
    top: o.top ?? 10,
    excludeSeen: o.excludeSeen ?? true,
    minRatings: o.minRatings ?? 0,
    reasons: o.reasons ?? true,
  };
  const { run, kind, history, titles, recommender } = await prepare(o, list);
  try {
    const users = o.users === "all" ? history.trainUsers : Int32Array.from(o.users);
    const info: BatchStart = { runId: run.runId, model: kind, dir: recommender.dir, users: users.length };
    await start?.(info);
    const title = (id: number) => titles?.get(id) ?? null;
    const blockSize = recommender.blockUsers;
    let failed = 0;
    for (let b = 0; b < users.length; b += blockSize) {
      if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new InterruptedError();
      const block = users.subarray(b, Math.min(users.length, b + blockSize));
      const errors = Array.from(block, (u) => recommender.unknown(u));
      const known = block.filter((_, i) => errors[i] === undefined);
      const lists = await recommender.recommendBlock(known);
      let next = 0;
      for (let i = 0; i < block.length; i++) {
        const error = errors[i];
        if (error !== undefined) {
          failed++;
          await sink({ userId: block[i], error });
          continue;
        }
        const l = lists[next++];
        const recommendations = Array.from(l.movieIds, (movieId, j) => ({
          movieId,
          score: published(l.scores[j], recommender, block[i], movieId),
          title: title(movieId),
          ...(l.reasons
            ? { reasons: l.reasons[j].map((r) => ({ ...r, contribution: roundScore(r.contribution), title: title(r.movieId) })) }
            : {}),
        }));
        await sink({ userId: block[i], recommendations });
      }
    }
    return { ...info, failed };
  } finally {
    recommender.dispose();
  }
}
