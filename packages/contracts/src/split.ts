/**
 * The train/test split shared by every step. A rating's side is a pure function of
 * (userId, movieId, seed), so it does not depend on row order, partitioning or thread count, and
 * the als and keras steps agree on it given the `seed` and `splitProp` in the als manifest.
 */

/** murmur3's 32-bit finaliser: a full-avalanche mix of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform number in [0, 1) determined by (userId, movieId, seed). */
export function splitHash(userId: number, movieId: number, seed: number): number {
  let h = fmix32(Math.imul(seed | 0, 0x9e3779b1) ^ 0x5bd1e995);
  h = fmix32(h ^ (userId | 0));
  h = fmix32(h ^ Math.imul(movieId | 0, 0xcc9e2d51));
  return h / 4294967296;
}

/** True when the rating belongs to the training part (the first `splitProp` of the hash range). */
export function isTraining(userId: number, movieId: number, seed: number, splitProp: number): boolean {
  return splitHash(userId, movieId, seed) < splitProp;
}

/** One byte per rating: 1 = training, 0 = test. */
export function splitMask(userIds: Int32Array, movieIds: Int32Array, seed: number, splitProp: number): Uint8Array {
  const n = userIds.length;
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = splitHash(userIds[i], movieIds[i], seed) < splitProp ? 1 : 0;
  return mask;
}

/** The parameters that define a split; recorded in the als manifest so keras reuses them. */
export interface SplitSpec {
  seed: number;
  splitProp: number;
}
