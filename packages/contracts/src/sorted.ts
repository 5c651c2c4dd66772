/**
 * Lookups in sorted id arrays: factor tables, id maps and serving all keep ids sorted ascending in
 * an Int32Array, and find a row by binary search instead of holding a hash map per table; where
 * millions of pairs are looked up (a catalog scored for many users), `positionLookup` makes the
 * lookup one array read.
 */

/** The index of `id` in the ascending `sorted`, or -1. */
export function binarySearch(sorted: Int32Array, id: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid];
    if (v === id) return mid;
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * A lookup of `id` -> its index in the ascending `sorted` (-1 if absent), made once per table
 * and cached for it: a dense table indexed by id when the ids are non-negative and not much
 * sparser than the table (MovieLens' ids are: the largest id at most 4 x the count + 1,000,000,
 * so the table costs at most that many 4-byte entries), else `binarySearch`.
 */
export function positionLookup(sorted: Int32Array): (id: number) => number {
  let lookup = lookups.get(sorted);
  if (lookup) return lookup;
  const max = sorted.length > 0 ? sorted[sorted.length - 1] : -1;
  if (sorted.length > 0 && sorted[0] >= 0 && max < 4 * sorted.length + 1_000_000) {
    const table = new Int32Array(max + 1).fill(-1);
    for (let i = 0; i < sorted.length; i++) table[sorted[i]] = i;
    lookup = (id) => (id >= 0 && id <= max ? (table[id] ?? -1) : -1);
  } else lookup = (id) => binarySearch(sorted, id);
  lookups.set(sorted, lookup);
  return lookup;
}

const lookups = new WeakMap<Int32Array, (id: number) => number>();
