/**
 * Fitting a ranking model on the training part of typed rating columns, and evaluating any ranker
 * on the test part with the ranking metrics: pure functions (no files), used by the step, the
 * bench and the tests. The training part is where `mask[i] === 1` (@ms/contracts' `splitMaskOf`).
 */
import { BadParameterError, splitHash } from "@ms/contracts";
import { groupByUser, positionsOf, sampleUsers, trainingItems } from "./data.js";
import { fitEase, type Histories } from "./ease.js";
import { NotPositiveDefiniteError } from "./inverse.js";
import { RankingAccumulator, type RankingMetrics } from "./metrics.js";
import type { RankModel, RankerModel, Ranker } from "./ranker.js";

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

/** Fits the model on the rows where mask is 1. */
export function fitRanker(cols: RatingColumns, mask: Uint8Array, o: FitOptions): FittedRanker {
  const { itemIds, trainCounts } = trainingItems(cols.movieIds, mask);
  const pos = positionsOf(itemIds, cols.movieIds);
  const train = groupByUser(
    cols.userIds,
    (i) => mask[i] === 1,
    (i) => pos[i],
  );
  const trainRows = train.items.length;
  if (o.model === "popularity")
    return { model: { model: "popularity", itemIds, trainCounts }, train, trainRows, seconds: { gram: 0, inverse: 0, prune: 0 } };
  const modelItems = modelItemsOf(trainCounts, itemIds, o.maxItems);
  const local = new Int32Array(itemIds.length).fill(-1);
  for (let c = 0; c < modelItems.length; c++) local[modelItems[c]] = c;
  const ids = Int32Array.from(modelItems, (p) => itemIds[p]);
  let fit;
  try {
    fit = fitEase(train, local, modelItems.length, o.lambda, o.neighbors, ids);
  } catch (error) {
    if (error instanceof NotPositiveDefiniteError)
      throw new BadParameterError("rank_lambda", `${o.lambda} leaves X^T X + λI numerically singular (${error.message}); raise it`);
    throw error;
  }
  return { model: { model: "ease", itemIds, trainCounts, modelItems, rows: fit.rows }, train, trainRows, seconds: fit.seconds };
}

export interface EvaluateOptions {
  k: number;
  /** A test item is relevant when its rating is at least this (0: every test item). */
  minRating: number;
  /** The most users evaluated, chosen by a hash of the user id. */
  maxUsers: number;
  seed: number;
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
  const test = groupByUser(
    cols.userIds,
    (i) => mask[i] === 0 && cols.ratings[i] >= o.minRating,
    (i) => cols.movieIds[i],
  );
  const chosen = sampleUsers(test.userIds, o.maxUsers, (id) => splitHash(id, 0, o.seed));
  const evalHist = historiesOf(chosen, train);
  const lists = ranker.recommendAll(evalHist, o.k);
  const acc = new RankingAccumulator({
    k: o.k,
    catalogSize: ranker.itemIds.length,
    trainCount: (id) => ranker.trainCounts[ranker.positionOf(id)] ?? 0,
  });
  let t = 0;
  for (let u = 0; u < chosen.length; u++) {
    while (test.userIds[t] !== chosen[u]) t++;
    const relevant = new Set(test.items.subarray(test.offsets[t], test.offsets[t + 1]));
    acc.add(lists.items.subarray(u * o.k, u * o.k + lists.counts[u]), relevant);
  }
  return acc.result();
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
