/**
 * The package's worker thread entry, for the two jobs parallel.ts runs off the main thread:
 * - `serve`: a batch of users' lists (`recommendAll` on its slice of the histories);
 * - `ease`: EASE fits from one gram matrix (shared, never written) at each λ of its list, one
 *   message per fit, so the caller scores a fit while the next one is inverted.
 * Results are posted with their buffers transferred; an error is posted as a message, a failed
 * inverse with its pivot so the caller can name λ.
 */
import { parentPort, workerData } from "node:worker_threads";
import { easeFromGram, type Histories } from "./ease.js";
import { NotPositiveDefiniteError } from "./inverse.js";
import { Ranker, type RankerModel, type RecommendOptions } from "./ranker.js";

export interface ServeJob {
  task: "serve";
  model: RankerModel;
  histories: Histories;
  k: number;
  options: RecommendOptions;
}

export interface EaseJob {
  task: "ease";
  /** G = X^T X's lower triangle (m x m), over a SharedArrayBuffer: each fit works on its own copy. */
  gram: Float64Array;
  m: number;
  /** λ by its index in the caller's grid. */
  lambdas: { index: number; lambda: number }[];
  neighbors: number;
  ids: Int32Array;
}

function serve(job: ServeJob): void {
  const out = new Ranker(job.model).recommendAll(job.histories, job.k, job.options);
  // The arrays were made by recommendAll in this thread: plain ArrayBuffers, so they can move.
  const buffers = [out.items.buffer, out.scores.buffer, out.counts.buffer] as ArrayBuffer[];
  parentPort?.postMessage({ items: out.items, scores: out.scores, counts: out.counts }, buffers);
}

function ease(job: EaseJob): void {
  for (const { index, lambda } of job.lambdas) {
    const g = new Float64Array(job.gram);
    try {
      const fit = easeFromGram(g, job.m, lambda, job.neighbors, job.ids);
      const { offsets, cols, values } = fit.rows;
      parentPort?.postMessage({ index, fit }, [offsets.buffer, cols.buffer, values.buffer] as ArrayBuffer[]);
    } catch (error) {
      const pivot = error instanceof NotPositiveDefiniteError ? { pivot: error.pivot, value: error.value } : {};
      parentPort?.postMessage({ index, error: error instanceof Error ? error.message : String(error), ...pivot });
      return;
    }
  }
}

const job = workerData as ServeJob | EaseJob;
try {
  if (job.task === "ease") ease(job);
  else serve(job);
} catch (error) {
  parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
}
