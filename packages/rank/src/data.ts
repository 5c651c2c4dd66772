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

/** Distinct values of `ids` where `mask[i] === 1`, ascending, with how often each occurs. */
export function trainingItems(movieIds: Int32Array, mask: Uint8Array): TrainingItems {
  const counts = new Map<number, number>();
  for (let i = 0; i < movieIds.length; i++) if (mask[i] === 1) counts.set(movieIds[i], (counts.get(movieIds[i]) ?? 0) + 1);
  const itemIds = Int32Array.from(counts.keys()).sort();
  const trainCounts = new Int32Array(itemIds.length);
  for (let i = 0; i < itemIds.length; i++) trainCounts[i] = counts.get(itemIds[i]) ?? 0;
  return { itemIds, trainCounts };
}

/** Position of each id in the ascending `sorted` ids (-1 when absent), for many ids at once. */
export function positionsOf(sorted: Int32Array, ids: Int32Array): Int32Array {
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = binarySearch(sorted, ids[i]);
  return out;
}

/**
 * Groups rows where `take(i)` by user: users ascending; each user's values (from `value(i)`)
 * ascending. Counting sort over the user order, so it is linear after sorting the distinct users.
 */
export function groupByUser(userIds: Int32Array, take: (i: number) => boolean, value: (i: number) => number): Histories {
  const perUser = new Map<number, number>();
  for (let i = 0; i < userIds.length; i++) if (take(i)) perUser.set(userIds[i], (perUser.get(userIds[i]) ?? 0) + 1);
  const users = Int32Array.from(perUser.keys()).sort();
  const slot = new Map<number, number>();
  const offsets = new Int32Array(users.length + 1);
  for (let u = 0; u < users.length; u++) {
    slot.set(users[u], u);
    offsets[u + 1] = offsets[u] + (perUser.get(users[u]) ?? 0);
  }
  const fill = offsets.slice(0, users.length);
  const items = new Int32Array(offsets[users.length]);
  for (let i = 0; i < userIds.length; i++) {
    if (!take(i)) continue;
    const u = slot.get(userIds[i]) ?? 0;
    items[fill[u]++] = value(i);
  }
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
