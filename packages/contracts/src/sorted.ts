/**
 * Lookups in sorted id arrays: factor tables, id maps and serving all keep ids sorted ascending in
 * an Int32Array, and find a row by binary search instead of holding a hash map per table.
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
