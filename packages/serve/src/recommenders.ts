/**
 * The models a batch of recommendations can come from, behind one interface that answers a block
 * of users at a time: the rating models (ALS: dot products of each user's factors with every
 * movie's, in a tight loop over the factor matrix; keras: all candidate pairs of the block in one
 * predict call), and popularity (most training ratings first). Each excludes the user's seen
 * movies (unless asked not to) and movies under the training-count floor, and keeps the best `top`
 * with `TopK` (ties to the smaller movie id).
 */
import { binarySearch } from "@ms/contracts";
import type { RunHistory } from "./history.js";
import type { ServedModel } from "./serve.js";
import { TopK } from "./topk.js";

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

/** A movie id -> position table over sorted ids: dense when the ids are small, else a binary search. */
export function movieIndex(sorted: Int32Array): (id: number) => number {
  const max = sorted.length ? sorted[sorted.length - 1] : -1;
  if (sorted.length && sorted[0] >= 0 && max < 4 * sorted.length + 1_000_000) {
    const table = new Int32Array(max + 1).fill(-1);
    for (let i = 0; i < sorted.length; i++) table[sorted[i]] = i;
    return (id) => (id >= 0 && id <= max ? table[id] : -1);
  }
  return (id) => binarySearch(sorted, id);
}

/**
 * The candidates' skip mask of one user: movies under the floor (copied from `floor`), and the
 * user's seen movies when excluded. `scratch` is reused across users.
 */
function userMask(
  history: RunHistory,
  userId: number,
  floor: Uint8Array,
  position: (id: number) => number,
  excludeSeen: boolean,
  scratch: Uint8Array,
): Uint8Array {
  scratch.set(floor);
  if (!excludeSeen) return scratch;
  const seen = history.seenOf(userId);
  if (seen) {
    for (let j = 0; j < seen.length; j++) {
      const p = position(seen[j]);
      if (p >= 0) scratch[p] = 1;
    }
  }
  return scratch;
}

/** 1 for each of `movieIds` with fewer than `minRatings` training ratings. */
function floorMask(history: RunHistory, movieIds: Int32Array, minRatings: number): Uint8Array {
  const floor = new Uint8Array(movieIds.length);
  if (minRatings > 0) for (let i = 0; i < movieIds.length; i++) floor[i] = history.trainCount(movieIds[i]) < minRatings ? 1 : 0;
  return floor;
}

function listOf(order: Int32Array, count: number, movieIds: Int32Array, scores: ArrayLike<number>): UserList {
  const list: UserList = { movieIds: new Int32Array(count), scores: new Float64Array(count) };
  for (let j = 0; j < count; j++) {
    list.movieIds[j] = movieIds[order[j]];
    list.scores[j] = scores[order[j]];
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
  const position = movieIndex(movies);
  const floor = floorMask(history, movies, o.minRatings);
  const selector = new TopK(o.top);
  const order = new Int32Array(o.top);
  const scratch = new Uint8Array(m);
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
      group.forEach((userId, g) => {
        const skip = userMask(history, userId, floor, position, o.excludeSeen, scratch);
        out.push(listOf(order, selector.select(scores[g], movies, skip, order), movies, scores[g]));
      });
    }
    return out;
  };

  /** keras: the block's candidate pairs (every unskipped movie of each user) in one predict call. */
  const kerasBlock = async (block: Int32Array): Promise<UserList[]> => {
    const masks = Array.from(block, (userId) => userMask(history, userId, floor, position, o.excludeSeen, scratch).slice());
    const total = masks.reduce((n, mask) => n + m - mask.reduce((a, b) => a + b, 0), 0);
    const pairUsers = new Int32Array(total);
    const pairMovies = new Int32Array(total);
    let p = 0;
    masks.forEach((mask, b) => {
      for (let i = 0; i < m; i++) {
        if (mask[i]) continue;
        pairUsers[p] = block[b];
        pairMovies[p++] = movies[i];
      }
    });
    const predicted = await model.predict(pairUsers, pairMovies);
    const out: UserList[] = [];
    let start = 0;
    for (const mask of masks) {
      const count = m - mask.reduce((a, b) => a + b, 0);
      const ids = pairMovies.subarray(start, start + count);
      const own = predicted.subarray(start, start + count);
      out.push(listOf(order, selector.select(own, ids, undefined, order), ids, own));
      start += count;
    }
    return out;
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

/** Popularity: the movies with the most training ratings, ties to the smaller id; score = that count. */
export function popularityRecommender(history: RunHistory, runId: string, dir: string, o: ListOptions): Recommender {
  // Movies in popularity order once; each user walks it until `top` are taken.
  const order = Int32Array.from(history.movies.keys()).sort(
    (a, b) => history.trainCounts[b] - history.trainCounts[a] || history.movies[a] - history.movies[b],
  );
  const position = movieIndex(history.movies);
  const seenMark = new Uint8Array(history.movies.length);
  return {
    kind: "popularity",
    dir,
    blockUsers: 256,
    unknown: (userId) => (history.seenOf(userId) ? undefined : `user ${userId} has no ratings in the data of run ${runId}`),
    async recommendBlock(block) {
      return Array.from(block, (userId) => {
        const seen = o.excludeSeen ? (history.seenOf(userId) ?? new Int32Array(0)) : new Int32Array(0);
        for (const id of seen) if (position(id) >= 0) seenMark[position(id)] = 1;
        const movieIds: number[] = [];
        const scores: number[] = [];
        for (let j = 0; j < order.length && movieIds.length < o.top; j++) {
          const i = order[j];
          if (seenMark[i] || history.trainCounts[i] < o.minRatings) continue;
          movieIds.push(history.movies[i]);
          scores.push(history.trainCounts[i]);
        }
        for (const id of seen) if (position(id) >= 0) seenMark[position(id)] = 0;
        return { movieIds: Int32Array.from(movieIds), scores: Float64Array.from(scores) };
      });
    },
    dispose: () => undefined,
  };
}
