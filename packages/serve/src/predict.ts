/**
 * Predicted ratings of (user, movie) pairs: `predictRatings` for a few given pairs, `predictStream`
 * for any number of them, streamed: the pairs file is read in chunks (`pairChunks`), each chunk's
 * known pairs scored in one predict call, and the rows handed to a sink (awaited: back-pressure)
 * before the next chunk is read. A pair whose user or movie the model has no factors for is scored
 * by the cold-start rule every step scores such test rows with (@ms/contracts' `ColdStartRule`:
 * the training mean plus the known side's damped bias, clamped to [0.5, 5]; `coldStartRuleOf`
 * fits it on the run's training part), and marked `cold` on its row: it does not fail the batch.
 */
import { BadInputError, BadParameterError, ColdStartRule, InterruptedError, splitMaskOf } from "@ms/contracts";
import { readRatingsColumns, type RatingsColumns } from "@ms/etl";
import { splitOfRun } from "./batch.js";
import type { LocatedRun, LocateOptions, RunModelDirs } from "./locate.js";
import { countPairs, pairChunks, PAIR_CHUNK } from "./pairs.js";
import { withModel } from "./recommend.js";
import { publishedRating, type ModelKind, type ServedModel } from "./serve.js";
import { warmPairs, type ColdSide } from "./warm.js";

export interface PredictionRow {
  userId: number;
  movieId: number;
  rating: number;
  /** Set when the cold-start rule scored the pair. */
  cold?: ColdSide;
}

export interface PredictStreamOptions extends LocateOptions {
  /** A pairs file (`userId,movieId` lines, a `timestamp` column when its header names one); checked line by line before anything is scored. */
  file: string;
  model?: ModelKind;
  /** Pairs per chunk (default 65,536). */
  chunk?: number;
  signal?: AbortSignal;
}

export interface PredictStart {
  runId: string;
  model: ModelKind;
  dir: string;
}

export interface PredictSummary extends PredictStart {
  pairs: number;
  /** Pairs scored by the cold-start rule. */
  cold: number;
}

/** The run's cold-start rule: fitted on the training part (the run's split) of its ratings (`modelDirs(run, ...).ratings`). */
export function coldStartRuleOf(run: LocatedRun, ratings: RatingsColumns): ColdStartRule {
  return new ColdStartRule(ratings, splitMaskOf(splitOfRun(run), ratings));
}

/** The run's cold-start rule, built on the first cold pair only (it reads every rating). */
function lazyColdRule(run: LocatedRun, dirs: RunModelDirs): () => Promise<ColdStartRule> {
  let rule: Promise<ColdStartRule> | undefined;
  return () => {
    rule ??= readRatingsColumns(dirs.ratings).then((ratings) => coldStartRuleOf(run, ratings));
    return rule;
  };
}

/** The rows of some pairs: the known ones scored by the model in one call, the others by the cold-start rule (marked `cold`). */
async function scorePairs(
  model: ServedModel,
  userIds: Int32Array,
  movieIds: Int32Array,
  coldRule: () => Promise<ColdStartRule>,
  timestamps?: Float64Array,
): Promise<PredictionRow[]> {
  const warm = warmPairs(model, userIds, movieIds, timestamps);
  const scores = warm.userIds.length ? await model.predict(warm.userIds, warm.movieIds, warm.timestamps) : new Float64Array(0);
  const rule = warm.cold ? await coldRule() : undefined;
  const rows: PredictionRow[] = new Array(userIds.length);
  for (let i = 0, w = 0; i < rows.length; i++) {
    const userId = userIds[i];
    const movieId = movieIds[i];
    const s = warm.sides[i];
    rows[i] = s
      ? { userId, movieId, rating: publishedRating((rule as ColdStartRule).predict(userId, movieId), model), cold: s }
      : { userId, movieId, rating: publishedRating(scores[w++], model) };
  }
  return rows;
}

export interface PredictOptions extends LocateOptions {
  pairs: { userId: number; movieId: number }[];
  model?: ModelKind;
}

export interface PredictResult {
  runId: string;
  model: ModelKind;
  predictions: PredictionRow[];
}

/** Predicted ratings of (user, movie) pairs; a pair with an id the model has no factors for is scored by the cold-start rule, as `predictStream` scores it. */
export async function predictRatings(o: PredictOptions): Promise<PredictResult> {
  if (!o.pairs.length) throw new BadParameterError("--pairs", "no (user, movie) pairs given");
  return withModel(o, async (model, run, dirs) => {
    const users = Int32Array.from(o.pairs, (p) => p.userId);
    const movies = Int32Array.from(o.pairs, (p) => p.movieId);
    const predictions = await scorePairs(model, users, movies, lazyColdRule(run, dirs));
    return { runId: run.runId, model: model.kind, predictions };
  });
}

/**
 * Streams the predictions of every pair of `o.file` to `sink`, one array per chunk, in file order.
 * `start` hears which run and model answer before the first rows.
 */
export async function predictStream(
  o: PredictStreamOptions,
  sink: (rows: PredictionRow[]) => void | Promise<void>,
  start?: (info: PredictStart) => void | Promise<void>,
): Promise<PredictSummary> {
  // A first pass checks every line, so a bad line fails (exit 3, file and line) before any row is written.
  if ((await countPairs(o.file)) === 0) throw new BadInputError("holds no userId,movieId pairs", { file: o.file });
  return withModel(o, async (model, run, dirs) => {
    const info: PredictStart = { runId: run.runId, model: model.kind, dir: model.dir };
    await start?.(info);
    const coldRule = lazyColdRule(run, dirs);
    let pairs = 0;
    let cold = 0;
    for await (const chunk of pairChunks(o.file, o.chunk ?? PAIR_CHUNK)) {
      if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new InterruptedError();
      const rows = await scorePairs(model, chunk.userIds, chunk.movieIds, coldRule, chunk.timestamps);
      const n = rows.length;
      pairs += n;
      for (const row of rows) if (row.cold) cold++;
      await sink(rows);
    }
    return { ...info, pairs, cold };
  });
}
