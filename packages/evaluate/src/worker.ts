/**
 * The ranking step's worker thread: it opens the keras network of a run (as `kerasScorer` does on
 * the main thread), lists the top k of every user it is given with `scoreLister`, and posts the
 * lists back (buffers transferred): movie ids and scores, k slots per user, and each user's count.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { RankingData } from "./data.js";
import { scoreLister } from "./ranking.js";
import { kerasScorer } from "./scorers.js";

/** What the worker needs of the data: the users, the catalog and each user's training movies. */
export type ListedData = Pick<RankingData, "itemIds" | "userIds" | "seen">;

export interface KerasListJob {
  dirs: { factors: string; model: string };
  data: ListedData;
  k: number;
}

async function main(job: KerasListJob): Promise<void> {
  const { data, k } = job;
  const scorer = await kerasScorer(job.dirs, data.itemIds);
  try {
    const users = data.userIds.length;
    const items = new Int32Array(users * k);
    const scores = new Float32Array(users * k);
    const counts = new Int32Array(users);
    await scoreLister(scorer).lists(data as RankingData, k, (u, ids, s, count) => {
      items.set(ids.subarray(0, count), u * k);
      for (let r = 0; r < count; r++) scores[u * k + r] = s[r];
      counts[u] = count;
    });
    parentPort?.postMessage({ items, scores, counts }, [items.buffer, scores.buffer, counts.buffer]);
  } finally {
    scorer.dispose();
  }
}

main(workerData as KerasListJob).catch((error: unknown) => {
  parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
});
