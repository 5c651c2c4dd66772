/**
 * The models a batch of recommendations can come from, behind one interface that answers a block
 * of users at a time: the rating models (ALS: dot products of each user's factors with every
 * movie's, in a tight loop over the factor matrix; keras: all candidate pairs of the block in one
 * predict call), the run's @ms/rank ranker (EASE), and popularity (most training ratings first,
 * @ms/rank's popularity ranker over the run's counts). Each excludes the user's seen movies
 * (unless asked not to) and movies under the training-count floor, and keeps the best `top` with
 * @ms/rank's top-k selection (ties to the smaller movie id).
 */
import { binarySearch, positionLookup } from "@ms/contracts";
import type { RunHistory } from "./history.js";
import type { ServedModel } from "./serve.js";
import { Ranker, TopKSelector, type TopKResult } from "@ms/rank";

/** The kinds `ms recommend --model` takes: the ranker, the rating models, popularity. */
export const RECOMMEND_KINDS = ["rank", "keras", "als", "popularity"] as const;
export type RecommendKind = (typeof RECOMMEND_KINDS)[number];

/** One rated movie that drove a ranker's score, and how much it added. */
export interface Reason {
  movieId: number;
  contribution: number;
}

/** One user's list: movie ids and scores best first, and the reasons where the model gives them. */
export interface UserList {
  movieIds: Int32Array;
  scores: Float64Array;
  reasons?: Reason[][];
}

export interface ListOptions {
  top: number;
  excludeSeen: boolean;
  /** A movie needs at least this many training ratings to be listed. */
  minRatings: number;
  /** Give the reasons where the model has them (default true; csv has no column for them). */
  reasons?: boolean;
}

export interface Recommender {
  kind: RecommendKind;
  /** The artifact the lists come from (named in messages). */
  dir: string;
  /** Users per `recommendBlock` call. */
  blockUsers: number;
  /** Why `userId` cannot be answered, or undefined when it can. */
  unknown(userId: number): string | undefined;
  /** The lists of a block of known users, in order. */
  recommendBlock(userIds: Int32Array): Promise<UserList[]>;
  dispose(): void;
}

/** The positions (in the model's sorted movie ids) of a user's seen movies, into a reused buffer. */
function seenPositions(history: RunHistory, userId: number, position: (id: number) => number, buffer: { ids: Int32Array }): Int32Array {
  const seen = history.seenOf(userId) ?? new Int32Array(0);
  if (buffer.ids.length < seen.length) buffer.ids = new Int32Array(seen.length * 2);
  let n = 0;
  for (let j = 0; j < seen.length; j++) {
    const p = position(seen[j]);
    if (p >= 0) buffer.ids[n++] = p;
  }
  return buffer.ids.subarray(0, n);
}

/** The positions of `movieIds` with fewer than `minRatings` training ratings: scored -Infinity, never listed. */
function underFloor(history: RunHistory, movieIds: Int32Array, minRatings: number): Int32Array {
  const out: number[] = [];
  if (minRatings > 0) for (let i = 0; i < movieIds.length; i++) if (history.trainCount(movieIds[i]) < minRatings) out.push(i);
  return Int32Array.from(out);
}

/** The selected candidates as a list of movie ids and scores. */
function listOf(top: TopKResult, movieIds: Int32Array): UserList {
  const list: UserList = { movieIds: new Int32Array(top.count), scores: new Float64Array(top.count) };
  for (let j = 0; j < top.count; j++) {
    list.movieIds[j] = movieIds[top.index[j]];
    list.scores[j] = top.score[j];
  }
  return list;
}

function unknownRatingUser(model: ServedModel, runId: string) {
  return (userId: number) =>
    model.hasUser(userId)
      ? undefined
      : `user ${userId} is not in the training ratings of run ${runId}, so the ${model.kind} model has no factors for them`;
}

/** Users scored together by the ALS path: each item row is read once for all of them (about 3x one at a time). */
const USERS_AT_ONCE = 4;

/**
 * scores[g][i] = sum_f user[g * rank + f] * items[i * rank + f] for the USERS_AT_ONCE users of
 * `user`, accumulated in f order as @ms/als's `dot` does (so the same bits).
 */
function dotAll(user: Float64Array, items: Float64Array, rank: number, m: number, scores: Float64Array[]): void {
  const [s0, s1, s2, s3] = scores;
  const r1 = rank;
  const r2 = 2 * rank;
  const r3 = 3 * rank;
  for (let i = 0, off = 0; i < m; i++, off += rank) {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let f = 0; f < rank; f++) {
      const v = items[off + f];
      a0 += user[f] * v;
      a1 += user[r1 + f] * v;
      a2 += user[r2 + f] * v;
      a3 += user[r3 + f] * v;
    }
    s0[i] = a0;
    s1[i] = a1;
    s2[i] = a2;
    s3[i] = a3;
  }
}

/** Pairs per keras predict call in a batch: bounds the pair arrays, the features and the scores. */
const KERAS_BLOCK_PAIRS = 1 << 20;

/** A rating model (als or keras) as a recommender: every candidate movie scored, the best `top` kept. */
export function ratingRecommender(model: ServedModel, runId: string, history: RunHistory, o: ListOptions): Recommender {
  const movies = model.movieIds;
  const m = movies.length;
  const position = positionLookup(movies);
  const floor = underFloor(history, movies, o.minRatings);
  const selector = new TopKSelector(m, o.top, movies);
  const result: TopKResult = { index: new Int32Array(o.top), score: new Float64Array(o.top), count: 0 };
  const buffer = { ids: new Int32Array(1024) };
  const none = new Int32Array(0);
  /** Scores one user's candidates are chosen from: floor movies -Infinity, seen ones excluded. */
  const select = (userId: number, scores: Float64Array): UserList => {
    for (const i of floor) scores[i] = Number.NEGATIVE_INFINITY;
    const exclude = o.excludeSeen ? seenPositions(history, userId, position, buffer) : none;
    return listOf(selector.select(scores, exclude, result), movies);
  };
  const { rank, userFactors, userIds } = model.factors;
  // Doubles once (exact), so the inner loop does no float32 conversions; same products and sums as @ms/als's predict.
  const items = Float64Array.from(model.factors.itemFactors);
  const scores = Array.from({ length: USERS_AT_ONCE }, () => new Float64Array(m));
  const user = new Float64Array(USERS_AT_ONCE * rank);

  /** ALS: USERS_AT_ONCE users' factors against the whole item matrix, each item row loaded once for all of them. */
  const alsBlock = async (block: Int32Array): Promise<UserList[]> => {
    const out: UserList[] = [];
    for (let b = 0; b < block.length; b += USERS_AT_ONCE) {
      const group = block.subarray(b, b + USERS_AT_ONCE);
      user.fill(0);
      group.forEach((userId, g) => {
        const row = binarySearch(userIds, userId) * rank;
        for (let f = 0; f < rank; f++) user[g * rank + f] = userFactors[row + f];
      });
      dotAll(user, items, rank, m, scores);
      group.forEach((userId, g) => out.push(select(userId, scores[g])));
    }
    return out;
  };

  /** keras: the block's candidate pairs (every movie not seen, not under the floor) in one predict call. */
  const kerasBlock = async (block: Int32Array): Promise<UserList[]> => {
    const skip = new Uint8Array(m);
    for (const i of floor) skip[i] = 1;
    const candidates = Array.from(block, (userId) => {
      const seen = o.excludeSeen ? seenPositions(history, userId, position, buffer) : none;
      for (const i of seen) skip[i] += 2;
      const mine = Int32Array.from(movies.keys()).filter((i) => skip[i] === 0);
      for (const i of seen) skip[i] -= 2;
      return mine;
    });
    const total = candidates.reduce((n, c) => n + c.length, 0);
    const pairUsers = new Int32Array(total);
    const pairMovies = new Int32Array(total);
    let p = 0;
    candidates.forEach((mine, b) => {
      for (const i of mine) {
        pairUsers[p] = block[b];
        pairMovies[p++] = movies[i];
      }
    });
    const predicted = await model.predict(pairUsers, pairMovies);
    const full = scores[0];
    let start = 0;
    return candidates.map((mine) => {
      full.fill(Number.NEGATIVE_INFINITY);
      for (let j = 0; j < mine.length; j++) full[mine[j]] = predicted[start + j];
      start += mine.length;
      return listOf(selector.select(full, none, result), movies);
    });
  };

  return {
    kind: model.kind,
    dir: model.dir,
    // keras scores a block in one predict call of up to KERAS_BLOCK_PAIRS pairs.
    blockUsers: model.kind === "keras" ? Math.max(1, Math.floor(KERAS_BLOCK_PAIRS / Math.max(1, m))) : 256,
    unknown: unknownRatingUser(model, runId),
    recommendBlock: model.kind === "als" ? alsBlock : kerasBlock,
    dispose: () => model.dispose(),
  };
}

/**
 * A @ms/rank ranker (the run's EASE model, or popularity over the training counts) as a
 * recommender. With reasons, each user goes through `Ranker.recommend` (which names the rated
 * movies behind each EASE score); without (csv), a block goes through `recommendAll`, which
 * reuses its buffers throughout.
 */
export function rankerRecommender(
  ranker: Ranker,
  kind: RecommendKind,
  dir: string,
  history: RunHistory,
  runId: string,
  o: ListOptions,
): Recommender {
  const options = { excludeSeen: o.excludeSeen, minRatings: o.minRatings };
  const none = new Int32Array(0);
  return {
    kind,
    dir,
    blockUsers: 256,
    unknown: (userId) =>
      history.seenOf(userId)
        ? undefined
        : `user ${userId} is not in the ratings of run ${runId}, so the ${kind} model has no history to rank from`,
    async recommendBlock(block) {
      if (o.reasons !== false) {
        return Array.from(block, (userId) => {
          const r = ranker.recommend(history.seenOf(userId) ?? none, o.top, options);
          return { movieIds: r.items, scores: Float64Array.from(r.scores), ...(r.reasons ? { reasons: r.reasons } : {}) };
        });
      }
      // The block's histories as the ranker's item positions, each user's ascending.
      const lists = Array.from(block, (userId) => {
        const seen = history.seenOf(userId) ?? none;
        return Int32Array.from(seen, (id) => ranker.positionOf(id))
          .filter((p) => p >= 0)
          .sort();
      });
      const offsets = new Int32Array(block.length + 1);
      lists.forEach((l, i) => (offsets[i + 1] = offsets[i] + l.length));
      const items = new Int32Array(offsets[block.length]);
      lists.forEach((l, i) => items.set(l, offsets[i]));
      const all = ranker.recommendAll({ userIds: block, offsets, items }, o.top, options);
      return Array.from(block, (_, u) => ({
        movieIds: all.items.slice(u * all.k, u * all.k + all.counts[u]),
        scores: Float64Array.from(all.scores.subarray(u * all.k, u * all.k + all.counts[u])),
      }));
    },
    dispose: () => undefined,
  };
}

/** Popularity: the movies with the most training ratings, ties to the smaller id (score: that count), as @ms/rank's popularity ranker. */
export function popularityRecommender(history: RunHistory, runId: string, dir: string, o: ListOptions): Recommender {
  const ranker = new Ranker({ model: "popularity", itemIds: history.movies, trainCounts: history.trainCounts });
  return rankerRecommender(ranker, "popularity", dir, history, runId, { ...o, reasons: false });
}
