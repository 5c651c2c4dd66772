/**
 * A batch of pairs split into the warm ones (the model knows both ids) and the cold ones (scored by
 * the run's cold-start rule instead). `ms predict` and ms serve's `/invocations` both score the
 * warm ones in one model call, so gathering them (with their timestamps) is done here, once.
 */

/** Which side of a pair the model has no factors for. */
export type ColdSide = "user" | "movie" | "user+movie";

/** What a model can score: `ServedModel` and `PairScorer` both have this shape. */
export interface KnownIds {
  hasUser(id: number): boolean;
  hasMovie(id: number): boolean;
}

export interface WarmPairs {
  /** Per pair of the batch: the unknown side, or undefined when the pair is warm. */
  sides: (ColdSide | undefined)[];
  /** How many pairs are cold. */
  cold: number;
  /** The warm pairs, in batch order: the batch's own arrays when none is cold. */
  userIds: Int32Array;
  movieIds: Int32Array;
  timestamps?: Float64Array;
}

export function warmPairs(known: KnownIds, userIds: Int32Array, movieIds: Int32Array, timestamps?: Float64Array): WarmPairs {
  const n = userIds.length;
  const sides: (ColdSide | undefined)[] = new Array(n);
  let cold = 0;
  for (let i = 0; i < n; i++) {
    const u = known.hasUser(userIds[i]);
    const m = known.hasMovie(movieIds[i]);
    if (u && m) continue;
    sides[i] = !u && !m ? "user+movie" : u ? "movie" : "user";
    cold++;
  }
  if (!cold) return { sides, cold, userIds, movieIds, timestamps };
  const warm = n - cold;
  const users = new Int32Array(warm);
  const movies = new Int32Array(warm);
  const times = timestamps ? new Float64Array(warm) : undefined;
  for (let i = 0, w = 0; i < n; i++) {
    if (sides[i]) continue;
    if (times) times[w] = (timestamps as Float64Array)[i];
    users[w] = userIds[i];
    movies[w++] = movieIds[i];
  }
  return { sides, cold, userIds: users, movieIds: movies, timestamps: times };
}
