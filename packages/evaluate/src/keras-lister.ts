/**
 * The keras network as a `Lister`. Scoring every catalog movie for every evaluated user through
 * the network is the ranking step's largest cost (12 s at 20M ratings, with ALS and fm 8-11 s
 * together), so with more than one thread it runs on a worker thread (worker.ts) while this
 * thread lists the other models: the same code on the same inputs, so the same lists. A network
 * that cannot score new pairs (an older model) is left out with a note.
 */
import type { Factors } from "@ms/als";
import { builtWorker, runWorker, type Logger } from "@ms/contracts";
import { kerasServing, UnservableModelError } from "@ms/serve";
import { scoreLister, type Lister } from "./ranking.js";
import { kerasScorer } from "./scorers.js";
import type { KerasListJob } from "./worker.js";

interface Lists {
  items: Int32Array;
  scores: Float32Array;
  counts: Int32Array;
}

/** Lists made by worker.ts: the worker runs when `lists` is called, and `visit` sees its lists in user order. */
function workerLister(script: URL, dirs: KerasListJob["dirs"]): Lister {
  return {
    model: "keras",
    offThread: true,
    async lists(data, k, visit, signal) {
      let out: Lists | undefined;
      const job: KerasListJob = { dirs, data: { itemIds: data.itemIds, userIds: data.userIds, seen: data.seen }, k };
      const what = "scoring the keras network";
      await runWorker(
        script,
        job,
        what,
        (m) => {
          if (m.error !== undefined || !m.items) throw new Error(`${what} failed: ${m.error}`);
          out = m as unknown as Lists;
          return true;
        },
        signal,
      );
      const { items, scores, counts } = out as Lists;
      for (let u = 0; u < counts.length; u++) visit(u, items.subarray(u * k, (u + 1) * k), scores.subarray(u * k, (u + 1) * k), counts[u]);
    },
    dispose: () => undefined,
  };
}

/**
 * The keras network's lister: on a worker thread when `threads` > 1 and the worker is built, else
 * on this thread with the `factors` already read; undefined, with a note, when it cannot score new pairs.
 */
export async function kerasLister(
  dirs: KerasListJob["dirs"],
  itemIds: Int32Array,
  factors: Factors,
  threads: number,
  notes: string[],
  logger?: Logger,
): Promise<Lister | undefined> {
  const script = threads > 1 ? builtWorker(import.meta.url, "worker.js") : undefined;
  try {
    if (!script) return scoreLister(await kerasScorer(dirs, itemIds, factors));
    const { features, servable } = await kerasServing(dirs.model);
    if (!servable) throw new UnservableModelError(dirs.model, features);
    return workerLister(script, dirs);
  } catch (error) {
    if (!(error instanceof UnservableModelError)) throw error;
    notes.push(`keras: ${error.message}`);
    logger?.warn({ model: error.dir }, `ranking: ${error.message}; keras left out`);
    return undefined;
  }
}
