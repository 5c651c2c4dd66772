/**
 * Gibbs fits side by side: each fit runs in a worker thread of its own (the built `fit-worker.js`
 * beside this module, or in dist/ when running from src/), at most `threads` at a time. The fits
 * are independent and each is seeded by its own options, so the numbers do not depend on how many
 * run at once. Without a built worker script the fits run one after another on this thread.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { InterruptedError } from "@ms/contracts";
import { gibbsFit, type GibbsData, type GibbsFit, type GibbsOptions } from "./bayes.js";

export interface FitJob {
  trainRows: Int32Array;
  queryRows: Int32Array;
  options: GibbsOptions;
}

function workerScript(): URL | undefined {
  for (const rel of ["./fit-worker.js", "../dist/fit-worker.js"]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

function inWorker(script: URL, data: GibbsData, job: FitJob, signal: AbortSignal | undefined): Promise<GibbsFit> {
  const { signal: _signal, ...options } = job.options;
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: { data, trainRows: job.trainRows, queryRows: job.queryRows, options } });
    const onAbort = () => {
      void worker.terminate();
      reject(new InterruptedError("interrupted during a Gibbs fit"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const settle = () => signal?.removeEventListener("abort", onAbort);
    worker.once("message", (m: { fit?: GibbsFit; error?: string }) => {
      settle();
      void worker.terminate();
      if (m.fit) resolve(m.fit);
      else reject(new Error(`Gibbs fit failed: ${m.error}`));
    });
    worker.once("error", (error) => {
      settle();
      reject(error);
    });
  });
}

/** Runs the jobs, at most `threads` at once; `onDone(index, fit, seconds)` as each ends. Results in job order. */
export async function gibbsFits(
  data: GibbsData,
  jobs: readonly FitJob[],
  threads: number,
  signal: AbortSignal | undefined,
  onDone: (index: number, fit: GibbsFit, seconds: number) => void,
): Promise<GibbsFit[]> {
  const script = threads > 1 ? workerScript() : undefined;
  const out = new Array<GibbsFit>(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      const started = performance.now();
      if (signal?.aborted) throw new InterruptedError("interrupted before a Gibbs fit");
      out[i] = script
        ? await inWorker(script, data, jobs[i], signal)
        : await gibbsFit(data, jobs[i].trainRows, jobs[i].queryRows, jobs[i].options);
      onDone(i, out[i], (performance.now() - started) / 1000);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(threads, jobs.length)) }, lane));
  return out;
}
