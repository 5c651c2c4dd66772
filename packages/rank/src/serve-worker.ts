/**
 * The worker entry of a batch of users served off the main thread: it receives the model and its
 * users' histories, runs `recommendAll`, and posts the lists back (their buffers transferred).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Histories } from "./ease.js";
import { Ranker, type RankerModel, type RecommendOptions } from "./ranker.js";

const job = workerData as { model: RankerModel; histories: Histories; k: number; options: RecommendOptions };
try {
  const out = new Ranker(job.model).recommendAll(job.histories, job.k, job.options);
  // The arrays were made by recommendAll in this thread: plain ArrayBuffers, so they can move.
  const buffers = [out.items.buffer, out.scores.buffer, out.counts.buffer] as ArrayBuffer[];
  parentPort?.postMessage({ items: out.items, scores: out.scores, counts: out.counts }, buffers);
} catch (error) {
  parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
}
