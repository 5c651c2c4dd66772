/**
 * Work of the rank package on several threads, each a worker thread running the package's
 * `worker.js` (beside this module, or in dist/ when running from src/), with results identical to
 * the one-thread code's:
 * - every user's list: the users cut into `threads` contiguous slices, each served by a worker
 *   holding a copy of the model; the lists in the order `recommendAll` gives them;
 * - EASE at several λ from one gram matrix (the `auto` selection): λ i on lane i mod `threads`,
 *   the gram matrix shared, each fit reported as it ends so the caller scores it while the next is
 *   inverted. A lane holds one m x m working copy, so two lanes hold one more than one thread does.
 * Without a built worker script, or with one thread, the work runs on this thread.
 */
import { builtWorker, InterruptedError, runWorker } from "@ms/contracts";
import { easeFromGram, type EaseFit, type Histories } from "./ease.js";
import { singularLambda } from "./fit.js";
import { NotPositiveDefiniteError } from "./inverse.js";
import { Ranker, type BatchRecommendation, type RankerModel, type RecommendOptions } from "./ranker.js";
import type { EaseJob, ServeJob } from "./worker.js";

const workerScript = () => builtWorker(import.meta.url, "worker.js");

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
  let lists: Lists | undefined;
  const what = "serving a batch of users";
  const job: ServeJob = { task: "serve", model, histories, k, options };
  return runWorker(
    script,
    job,
    what,
    (m) => {
      if (!(m.items && m.scores && m.counts)) throw new Error(`${what} failed: ${m.error}`);
      lists = m as unknown as Lists;
      return true;
    },
    signal,
  ).then(() => lists as Lists);
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

/**
 * EASE from one gram matrix (`gram`, G = X^T X's lower triangle, m x m; not modified) at each λ of
 * `lambdas`, as `easeFromGram` fits it, on up to `threads` lanes; `onFit(index, fit)` is called
 * on this thread as each fit ends (in any order across lanes, in λ order within one). A λ that
 * leaves G + λI singular rejects with rank_lambda's parameter error (`singularLambda`).
 */
export async function easeFits(
  gram: Float64Array,
  m: number,
  lambdas: readonly number[],
  neighbors: number,
  ids: Int32Array,
  onFit: (index: number, fit: EaseFit) => void,
  threads = 2,
  signal?: AbortSignal,
): Promise<void> {
  const lanes = Math.min(threads, lambdas.length);
  const script = lanes > 1 ? workerScript() : undefined;
  if (!script) {
    lambdas.forEach((lambda, index) => {
      if (signal?.aborted) throw new InterruptedError("interrupted while fitting EASE");
      let fit: EaseFit;
      try {
        fit = easeFromGram(gram.slice(), m, lambda, neighbors, ids);
      } catch (error) {
        throw singularLambda(error, lambda);
      }
      onFit(index, fit);
    });
    return;
  }
  const shared = new Float64Array(new SharedArrayBuffer(gram.byteLength));
  shared.set(gram);
  // One lane failing stops the others: no fit is reported after the call has rejected.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const lane = (l: number) => lambdas.map((lambda, index) => ({ index, lambda })).filter((_, index) => index % lanes === l);
  try {
    await Promise.all(
      Array.from({ length: lanes }, (_, l) => {
        const mine = lane(l);
        let left = mine.length;
        const job: EaseJob = { task: "ease", gram: shared, m, lambdas: mine, neighbors, ids };
        const onMessage = (msg: Record<string, unknown>) => {
          const index = msg.index as number;
          if (msg.error !== undefined) {
            const cause =
              typeof msg.pivot === "number" ? new NotPositiveDefiniteError(msg.pivot, msg.value as number) : new Error(String(msg.error));
            throw singularLambda(cause, lambdas[index]);
          }
          onFit(index, msg.fit as EaseFit);
          return --left === 0;
        };
        return runWorker(script, job, "fitting EASE", onMessage, stop.signal).catch((error) => {
          stop.abort();
          throw error;
        });
      }),
    );
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
