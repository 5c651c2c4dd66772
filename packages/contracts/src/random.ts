/**
 * The project's one seeded generator. Synthetic data, ALS initialisation and keras shuffles must
 * repeat exactly for a seed, on every platform, so they share this integer-only generator rather
 * than Math.random or a library whose stream may change between versions.
 */

/** mulberry32: a 32-bit state, uniform floats in [0, 1); tiny and fast, good enough for sampling. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a seed and a salt through murmur3's finaliser, so nearby seeds give unrelated streams. */
export function mixSeed(seed: number, salt: number): number {
  let h = Math.imul((seed | 0) ^ Math.imul(salt, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
