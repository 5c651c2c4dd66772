/**
 * The rank step's model as a `Lister`: @ms/rank's `Ranker` lists a batch of users at once from
 * their training histories (`recommendAll`, its buffers reused), the way `ms recommend` serves it,
 * so the figures are those of the lists a person gets.
 */
import { openRanker, type Ranker } from "@ms/rank";
import type { Lister } from "./ranking.js";
import { checkSignal } from "./signal.js";

/** Users per `recommendAll` call: bounds the batch's result buffers. */
const USERS_PER_CALL = 4096;

/** The training histories of users [start, end) as positions among the ranker's items, ascending. */
function histories(
  ranker: Ranker,
  itemIds: Int32Array,
  seen: { offsets: Int32Array; items: Int32Array },
  userIds: Int32Array,
  start: number,
  end: number,
) {
  const offsets = new Int32Array(end - start + 1);
  const items = new Int32Array(seen.offsets[end] - seen.offsets[start]);
  for (let u = start; u < end; u++) {
    let n = offsets[u - start];
    for (let j = seen.offsets[u]; j < seen.offsets[u + 1]; j++) {
      const p = ranker.positionOf(itemIds[seen.items[j]]);
      if (p >= 0) items[n++] = p;
    }
    items.subarray(offsets[u - start], n).sort();
    offsets[u - start + 1] = n;
  }
  return { userIds: userIds.subarray(start, end), offsets, items };
}

/** The ranker of a rank artifact, listing users' top k with the user's training movies excluded. */
export async function rankerLister(dir: string): Promise<Lister> {
  const ranker = await openRanker(dir);
  return {
    model: "ranker",
    async lists(data, k, visit, signal) {
      for (let start = 0; start < data.userIds.length; start += USERS_PER_CALL) {
        checkSignal(signal);
        const end = Math.min(data.userIds.length, start + USERS_PER_CALL);
        const batch = ranker.recommendAll(histories(ranker, data.itemIds, data.seen, data.userIds, start, end), k);
        for (let u = start; u < end; u++) {
          const at = (u - start) * k;
          visit(u, batch.items.subarray(at, at + k), batch.scores.subarray(at, at + k), batch.counts[u - start]);
        }
      }
    },
    dispose: () => undefined,
  };
}
