/**
 * The training and test parts of the ratings as a ranking model sees them: the items of the
 * training part (ascending ids, with their training counts), each user's training items
 * (histories, as item positions, ascending) and each user's relevant test items. Pure functions
 * over typed columns; the split mask comes from @ms/contracts' `splitMaskOf`.
 */
import { binarySearch } from "@ms/contracts";
import type { Histories } from "./ease.js";

export interface TrainingItems {
  /** Every item with a training rating, ascending. */
  itemIds: Int32Array;
  /** Training ratings per item (parallel to itemIds). */
  trainCounts: Int32Array;
}

/**
 * Ids up to this are counted in a dense table indexed by id (MovieLens' ids are a few hundred
 * thousand at most); larger or negative ids fall back to a Map. The table is 4 bytes per id.
 */
const DENSE_IDS = 1 << 25;

/** How often each id occurs where `take(i)`: the distinct ids ascending and their counts. */
function countIds(ids: Int32Array, take: (i: number) => boolean): { ids: Int32Array; counts: Int32Array } {
  let lo = 0;
  let hi = -1;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < lo) lo = ids[i];
    if (ids[i] > hi) hi = ids[i];
  }
  if (lo >= 0 && hi < DENSE_IDS) {
    const table = new Int32Array(hi + 1);
    for (let i = 0; i < ids.length; i++) if (take(i)) table[ids[i]]++;
    let n = 0;
    for (let id = 0; id <= hi; id++) if (table[id] > 0) n++;
    const out = { ids: new Int32Array(n), counts: new Int32Array(n) };
    for (let id = 0, at = 0; id <= hi; id++)
      if (table[id] > 0) {
        out.ids[at] = id;
        out.counts[at++] = table[id];
      }
    return out;
  }
  const counts = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) if (take(i)) counts.set(ids[i], (counts.get(ids[i]) ?? 0) + 1);
  const sorted = Int32Array.from(counts.keys()).sort();
  return { ids: sorted, counts: Int32Array.from(sorted, (id) => counts.get(id) ?? 0) };
}

/** Distinct values of `movieIds` where `mask[i] === 1`, ascending, with how often each occurs. */
export function trainingItems(movieIds: Int32Array, mask: Uint8Array): TrainingItems {
  const { ids, counts } = countIds(movieIds, (i) => mask[i] === 1);
  return { itemIds: ids, trainCounts: counts };
}

/** Position of each id in the ascending `sorted` ids (-1 when absent), for many ids at once. */
export function positionsOf(sorted: Int32Array, ids: Int32Array): Int32Array {
  const out = new Int32Array(ids.length);
  const top = sorted.length > 0 ? sorted[sorted.length - 1] : -1;
  if (sorted.length > 0 && sorted[0] >= 0 && top < DENSE_IDS) {
    const table = new Int32Array(top + 1).fill(-1);
    for (let p = 0; p < sorted.length; p++) table[sorted[p]] = p;
    for (let i = 0; i < ids.length; i++) out[i] = ids[i] >= 0 && ids[i] <= top ? table[ids[i]] : -1;
    return out;
  }
  for (let i = 0; i < ids.length; i++) out[i] = binarySearch(sorted, ids[i]);
  return out;
}

/**
 * Groups rows where `take(i)` by user: users ascending; each user's values (from `value(i)`)
 * ascending. A counting sort over the users' positions, so linear in the rows.
 */
export function groupByUser(userIds: Int32Array, take: (i: number) => boolean, value: (i: number) => number): Histories {
  const { ids: users, counts } = countIds(userIds, take);
  const slot = positionsOf(users, userIds);
  const offsets = new Int32Array(users.length + 1);
  for (let u = 0; u < users.length; u++) offsets[u + 1] = offsets[u] + counts[u];
  const fill = offsets.slice(0, users.length);
  const items = new Int32Array(offsets[users.length]);
  for (let i = 0; i < userIds.length; i++) if (take(i)) items[fill[slot[i]]++] = value(i);
  for (let u = 0; u < users.length; u++) items.subarray(offsets[u], offsets[u + 1]).sort();
  return { userIds: users, offsets, items };
}

/** The items of user position u in `h`. */
export function historyOf(h: Histories, u: number): Int32Array {
  return h.items.subarray(h.offsets[u], h.offsets[u + 1]);
}

/**
 * A deterministic subset of at most `cap` users: those with the smallest hash of their id (the
 * same users whatever the row order), in ascending id order. `cap` >= the count keeps every user.
 */
export function sampleUsers(userIds: Int32Array, cap: number, hash: (id: number) => number): Int32Array {
  if (userIds.length <= cap) return userIds;
  const order = Array.from(userIds).sort((a, b) => hash(a) - hash(b) || a - b);
  return Int32Array.from(order.slice(0, cap)).sort();
}
