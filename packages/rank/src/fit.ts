/**
 * Fitting a ranking model on the training part of typed rating columns, and evaluating any ranker
 * on the test part with the ranking metrics: pure functions (no files), used by the step, the
 * bench and the tests. The training part is where `mask[i] === 1` (@ms/contracts' `splitMaskOf`).
 */
import { BadParameterError, splitHash } from "@ms/contracts";
import { groupByUser, positionsOf, sampleUsers, trainingItems } from "./data.js";
import { fitEase, type Histories, type SparseRows } from "./ease.js";
import { NotPositiveDefiniteError } from "./inverse.js";
import { RankingAccumulator, type RankingMetrics } from "./metrics.js";
import type { BatchRecommendation, RankModel, RankerModel, Ranker } from "./ranker.js";

export interface RatingColumns {
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
}

export interface FitOptions {
  model: RankModel;
  lambda: number;
  maxItems: number;
  neighbors: number;
  /** β of the popularity penalty: B's column j is divided by item j's training count^β (0: none). */
  popularityPenalty?: number;
}

export interface FittedRanker {
  model: RankerModel;
  /** The training part grouped by user, as item positions (what recommendAll reads). */
  train: Histories;
  trainRows: number;
  seconds: { gram: number; inverse: number; prune: number };
}

/** The `maxItems` most-rated positions (ties: smaller id), ascending. */
export function modelItemsOf(trainCounts: Int32Array, itemIds: Int32Array, maxItems: number): Int32Array {
  const order = Int32Array.from({ length: itemIds.length }, (_, i) => i);
  order.sort((a, b) => trainCounts[b] - trainCounts[a] || itemIds[a] - itemIds[b]);
  return order.slice(0, Math.min(maxItems, order.length)).sort();
}

/** The rows where mask is 1: their items (ascending) with training counts, and the rows grouped by user as item positions. */
export function trainingPart(cols: RatingColumns, mask: Uint8Array): { itemIds: Int32Array; trainCounts: Int32Array; train: Histories } {
  const { itemIds, trainCounts } = trainingItems(cols.movieIds, mask);
  const pos = positionsOf(itemIds, cols.movieIds);
  const train = groupByUser(
    cols.userIds,
    (i) => mask[i] === 1,
    (i) => pos[i],
  );
  return { itemIds, trainCounts, train };
}

/** EASE's items: the `maxItems` most rated (modelItemsOf), each item's place among them (`local`, -1 outside) and their ids. */
export function modelIndex(
  trainCounts: Int32Array,
  itemIds: Int32Array,
  maxItems: number,
): { modelItems: Int32Array; local: Int32Array; ids: Int32Array } {
  const modelItems = modelItemsOf(trainCounts, itemIds, maxItems);
  const local = new Int32Array(itemIds.length).fill(-1);
  for (let c = 0; c < modelItems.length; c++) local[modelItems[c]] = c;
  return { modelItems, local, ids: Int32Array.from(modelItems, (p) => itemIds[p]) };
}

/** Fits the model on the rows where mask is 1. */
export function fitRanker(cols: RatingColumns, mask: Uint8Array, o: FitOptions): FittedRanker {
  const { itemIds, trainCounts, train } = trainingPart(cols, mask);
  const trainRows = train.items.length;
  if (o.model === "popularity")
    return { model: { model: "popularity", itemIds, trainCounts }, train, trainRows, seconds: { gram: 0, inverse: 0, prune: 0 } };
  const { modelItems, local, ids } = modelIndex(trainCounts, itemIds, o.maxItems);
  let fit;
  try {
    fit = fitEase(train, local, modelItems.length, o.lambda, o.neighbors, ids);
  } catch (error) {
    throw singularLambda(error, o.lambda);
  }
  penalisePopularity(fit.rows, modelItems, trainCounts, o.popularityPenalty ?? 0);
  return { model: { model: "ease", itemIds, trainCounts, modelItems, rows: fit.rows }, train, trainRows, seconds: fit.seconds };
}

/** A failed inverse as the parameter error it is (λ too small for the data); any other error as it was. */
export function singularLambda(error: unknown, lambda: number): unknown {
  if (error instanceof NotPositiveDefiniteError)
    return new BadParameterError("rank_lambda", `${lambda} leaves X^T X + λI numerically singular (${error.message}); raise it`);
  return error;
}

/**
 * Divides B's column j by count_j^β (in place), so a user's score of item j becomes
 * sum_i B[i][j] / count_j^β. Why: EASE's top lists favour the most-rated items, and a column
 * scale is the one change that trades some of that for catalog coverage without touching the
 * fit (Steck's popularity-debiasing as a post-hoc re-weighting; β = 0 leaves B as fitted). The
 * order of a column's entries, and so an item's reasons, is unchanged.
 */
export function penalisePopularity(rows: SparseRows, modelItems: Int32Array, trainCounts: Int32Array, beta: number): void {
  if (beta === 0) return;
  const scale = popularityScale(modelItems, trainCounts, beta);
  for (let e = 0; e < rows.cols.length; e++) rows.values[e] *= scale[rows.cols[e]];
}

/** The penalty's column scale: count_j^-β per model item (a count below 1 taken as 1). */
export function popularityScale(modelItems: Int32Array, trainCounts: Int32Array, beta: number): Float64Array {
  return Float64Array.from(modelItems, (p) => Math.max(1, trainCounts[p]) ** -beta);
}

export interface EvaluateOptions {
  k: number;
  /** A test item is relevant when its rating is at least this (0: every test item). */
  minRating: number;
  /** The most users evaluated, chosen by a hash of the user id. */
  maxUsers: number;
  seed: number;
}

/** The users an evaluation scores: their training histories and relevant test items (movie ids). */
export interface Evaluation {
  /** The evaluated candidates, ascending ids (a user without a relevant item is skipped when scored). */
  users: Int32Array;
  histories: Histories;
  relevant: Set<number>[];
}

/**
 * The test part (mask 0) as an evaluation: the users with a test item rated at least
 * `minRating`, at most `maxUsers` of them by a hash of the user id, with their training items
 * (`train`, positions into the ranker's items). Built once, it scores any number of rankers.
 */
export function evaluationOf(cols: RatingColumns, mask: Uint8Array, train: Histories, o: Omit<EvaluateOptions, "k">): Evaluation {
  const test = groupByUser(
    cols.userIds,
    (i) => mask[i] === 0 && cols.ratings[i] >= o.minRating,
    (i) => cols.movieIds[i],
  );
  const users = sampleUsers(test.userIds, o.maxUsers, (id) => splitHash(id, 0, o.seed));
  const relevant: Set<number>[] = [];
  let t = 0;
  for (let u = 0; u < users.length; u++) {
    while (test.userIds[t] !== users[u]) t++;
    relevant.push(new Set(test.items.subarray(test.offsets[t], test.offsets[t + 1])));
  }
  return { users, histories: historiesOf(users, train), relevant };
}

/** The ranking metrics of `ranker`'s top-k lists on an evaluation, and each evaluated user's nDCG@k. */
export function scoreRanker(ranker: Ranker, e: Evaluation, k: number): { metrics: RankingMetrics; userNdcg: Float64Array } {
  return scoreLists(ranker, e, ranker.recommendAll(e.histories, k), k);
}

/** The ranking metrics of lists `ranker` made for an evaluation's users (recommendAll's, or one of recommendAllScaled's). */
export function scoreLists(
  ranker: Ranker,
  e: Evaluation,
  lists: BatchRecommendation,
  k: number,
): { metrics: RankingMetrics; userNdcg: Float64Array } {
  const acc = new RankingAccumulator({
    k,
    catalogSize: ranker.itemIds.length,
    trainCount: (id) => ranker.trainCounts[ranker.positionOf(id)] ?? 0,
  });
  for (let u = 0; u < e.users.length; u++) acc.add(lists.items.subarray(u * k, u * k + lists.counts[u]), e.relevant[u]);
  return { metrics: acc.result(), userNdcg: acc.userNdcg() };
}

/**
 * The ranking metrics of `ranker` on the test part (mask 0): each evaluated user's list is
 * recommended from their training items (`train`, positions into the ranker's items), those
 * items excluded; catalog coverage is over the ranker's training items.
 */
export function evaluateRanker(
  ranker: Ranker,
  cols: RatingColumns,
  mask: Uint8Array,
  train: Histories,
  o: EvaluateOptions,
): RankingMetrics {
  return scoreRanker(ranker, evaluationOf(cols, mask, train, o), o.k).metrics;
}

/** The training histories of `users` (ascending ids), empty for a user without training rows. */
export function historiesOf(users: Int32Array, train: Histories): Histories {
  const offsets = new Int32Array(users.length + 1);
  const parts: Int32Array[] = [];
  let t = 0;
  for (let u = 0; u < users.length; u++) {
    while (t < train.userIds.length && train.userIds[t] < users[u]) t++;
    const part =
      t < train.userIds.length && train.userIds[t] === users[u]
        ? train.items.subarray(train.offsets[t], train.offsets[t + 1])
        : new Int32Array(0);
    parts.push(part);
    offsets[u + 1] = offsets[u] + part.length;
  }
  const items = new Int32Array(offsets[users.length]);
  for (let u = 0; u < users.length; u++) items.set(parts[u], offsets[u]);
  return { userIds: users, offsets, items };
}
