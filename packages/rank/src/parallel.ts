/**
 * Every user's list on several threads: the users are cut into `threads` contiguous slices, each
 * served by a worker thread of its own (the built `serve-worker.js` beside this module, or in dist/
 * when running from src/) holding a copy of the model; the lists are the ones `recommendAll` gives
 * on one thread, in the same order. Without a built worker script, or with one thread, the batch
 * runs on this thread.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { InterruptedError } from "@ms/contracts";
import type { Histories } from "./ease.js";
import { Ranker, type BatchRecommendation, type RankerModel, type RecommendOptions } from "./ranker.js";

function workerScript(): URL | undefined {
  for (const rel of ["./serve-worker.js", "../dist/serve-worker.js"]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/** Users [from, to) of `h`, their items copied out (a worker gets only its own). */
function sliceHistories(h: Histories, from: number, to: number): Histories {
  const base = h.offsets[from];
  return {
    userIds: h.userIds.slice(from, to),
    offsets: Int32Array.from(h.offsets.subarray(from, to + 1), (o) => o - base),
    items: h.items.slice(base, h.offsets[to]),
  };
}

interface Lists {
  items: Int32Array;
  scores: Float32Array;
  counts: Int32Array;
}

function inWorker(
  script: URL,
  model: RankerModel,
  histories: Histories,
  k: number,
  options: RecommendOptions,
  signal?: AbortSignal,
): Promise<Lists> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: { model, histories, k, options } });
    const onAbort = () => {
      void worker.terminate();
      reject(new InterruptedError("interrupted while serving users"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const settle = () => signal?.removeEventListener("abort", onAbort);
    worker.once("message", (m: Partial<Lists> & { error?: string }) => {
      settle();
      void worker.terminate();
      if (m.items && m.scores && m.counts) resolve({ items: m.items, scores: m.scores, counts: m.counts });
      else reject(new Error(`serving a batch of users failed: ${m.error}`));
    });
    worker.once("error", (error) => {
      settle();
      reject(error);
    });
  });
}

/** Every user's top k (as Ranker.recommendAll) on up to `threads` worker threads. */
export async function recommendAllParallel(
  model: RankerModel,
  histories: Histories,
  k: number,
  options: RecommendOptions = {},
  threads = 2,
  signal?: AbortSignal,
): Promise<BatchRecommendation> {
  const users = histories.userIds.length;
  const script = threads > 1 && users > 1 ? workerScript() : undefined;
  if (!script) return new Ranker(model).recommendAll(histories, k, options);
  const lanes = Math.min(threads, users);
  const cuts = Array.from({ length: lanes + 1 }, (_, i) => Math.round((i * users) / lanes));
  const parts = await Promise.all(
    cuts.slice(0, -1).map((from, i) => inWorker(script, model, sliceHistories(histories, from, cuts[i + 1]), k, options, signal)),
  );
  const out: BatchRecommendation = {
    userIds: histories.userIds,
    k,
    items: new Int32Array(users * k),
    scores: new Float32Array(users * k),
    counts: new Int32Array(users),
  };
  parts.forEach((p, i) => {
    out.items.set(p.items, cuts[i] * k);
    out.scores.set(p.scores, cuts[i] * k);
    out.counts.set(p.counts, cuts[i]);
  });
  return out;
}
