/**
 * Gibbs fits side by side: each fit runs in a worker thread of its own (the built `fit-worker.js`
 * beside this module, or in dist/ when running from src/), at most `threads` at a time. Each fit
 * is seeded by its own options, and a job that needs another's result (`after`) starts only once
 * that one has ended and builds its options from it, so the numbers do not depend on how many run
 * at once or in which order they end. Without a built worker script the fits run one after
 * another on this thread. `bayesFits` is the out-of-fold scheme's pool over these.
 */
import { builtWorker, InterruptedError, runWorker } from "@ms/contracts";
import { fitOptions, gibbsFit, type GibbsData, type GibbsFit, type GibbsOptions } from "./bayes.js";

export interface FitJob {
  trainRows: Int32Array;
  queryRows: Int32Array;
  /** The options, or (with `after`) a function of that job's fit. */
  options: GibbsOptions | ((before: GibbsFit) => GibbsOptions);
  /** The index of the job whose fit this one needs; it is taken as soon as that one has ended. */
  after?: number;
}

/** A job with its options settled. */
type ReadyJob = FitJob & { options: GibbsOptions };

const workerScript = () => builtWorker(import.meta.url, "fit-worker.js");

function inWorker(script: URL, data: GibbsData, job: ReadyJob, signal: AbortSignal | undefined): Promise<GibbsFit> {
  const { signal: _signal, ...options } = job.options;
  let fit: GibbsFit | undefined;
  const onMessage = (m: { fit?: GibbsFit; error?: string }) => {
    if (!m.fit) throw new Error(`Gibbs fit failed: ${m.error}`);
    fit = m.fit;
    return true;
  };
  const work = { data, trainRows: job.trainRows, queryRows: job.queryRows, options };
  return runWorker(script, work, "running a Gibbs fit", onMessage, signal).then(() => fit as GibbsFit);
}

/**
 * Runs the jobs, at most `threads` at once; `onDone(index, fit, seconds)` as each ends. Results in
 * job order. A free lane takes the first job, in job order, that is not waiting on another's fit;
 * when every job left is waiting, it waits for the next fit to end.
 */
export async function gibbsFits(
  data: GibbsData,
  jobs: readonly FitJob[],
  threads: number,
  signal: AbortSignal | undefined,
  onDone: (index: number, fit: GibbsFit, seconds: number) => void,
): Promise<GibbsFit[]> {
  for (const [i, job] of jobs.entries())
    if (job.after !== undefined && !(job.after >= 0 && job.after < jobs.length && job.after !== i && jobs[job.after].after === undefined))
      throw new RangeError(`job ${i} waits on job ${job.after}, which is not a job without a wait of its own`);
  const script = threads > 1 ? workerScript() : undefined;
  const out = new Array<GibbsFit>(jobs.length);
  const taken = new Uint8Array(jobs.length);
  let ended: () => void = () => {};
  let someEnded = new Promise<void>((resolve) => (ended = resolve));
  const ready = (i: number) => taken[i] === 0 && (jobs[i].after === undefined || out[jobs[i].after as number] !== undefined);
  const lane = async () => {
    for (;;) {
      let i = -1;
      for (let j = 0; j < jobs.length && i < 0; j++) if (ready(j)) i = j;
      if (i < 0) {
        if (taken.every((t) => t === 1)) return;
        await someEnded;
        continue;
      }
      taken[i] = 1;
      const job = jobs[i];
      const options = typeof job.options === "function" ? job.options(out[job.after as number]) : job.options;
      const settled: ReadyJob = { ...job, options };
      const started = performance.now();
      if (signal?.aborted) throw new InterruptedError("interrupted before a Gibbs fit");
      out[i] = script
        ? await inWorker(script, data, settled, signal)
        : await gibbsFit(data, settled.trainRows, settled.queryRows, settled.options);
      onDone(i, out[i], (performance.now() - started) / 1000);
      const wake = ended;
      someEnded = new Promise<void>((resolve) => (ended = resolve));
      wake();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(threads, jobs.length)) }, lane));
  return out;
}

/** What the out-of-fold pool needs: the fits' settings (as `fitOptions` takes them), threads, progress. */
export type PoolOptions = Parameters<typeof fitOptions>[0] & {
  threads?: number;
  onFit?: (fit: number, seconds: number, samples: number) => void;
};

/**
 * The bayes fits of the out-of-fold scheme, side by side (options.threads), each seeded by its
 * fold: every fold's but the first's when the selection's first-fold fit (`fold0`) is reused, and
 * with `fullSamples: "first"` the full fit too (index `k`), first in line once fold 1 has ended
 * (it needs only that fold's count), so no core idles while it runs alone after the folds.
 */
export async function bayesFits(
  data: GibbsData,
  k: number,
  rowsOf: (f: number) => { trainRows: Int32Array; queryRows: Int32Array },
  options: PoolOptions,
  fold0: GibbsFit | undefined,
): Promise<GibbsFit[]> {
  const pending = Array.from({ length: k }, (_, f) => f).filter((f) => f > 0 || !fold0);
  const jobs: FitJob[] = pending.map((f) => ({ ...rowsOf(f), options: fitOptions(options, data, rowsOf(f).queryRows, f, []) }));
  const fullInPool = options.fullSamples === "first";
  if (fullInPool) {
    const fullOptions = (first: GibbsFit) => fitOptions(options, data, undefined, k, [first.samplesUsed]);
    jobs.unshift(
      fold0 ? { ...rowsOf(k), options: fullOptions(fold0) } : { ...rowsOf(k), options: fullOptions, after: 1 + pending.indexOf(0) },
    );
  }
  const foldOf = (j: number) => (fullInPool ? (j === 0 ? k : pending[j - 1]) : pending[j]);
  const pooled = await gibbsFits(data, jobs, options.threads ?? 1, options.signal, (j, fit, seconds) =>
    options.onFit?.(foldOf(j), seconds, fit.samplesUsed),
  );
  const fits: GibbsFit[] = [];
  if (fold0) fits[0] = fold0;
  pooled.forEach((fit, j) => {
    fits[foldOf(j)] = fit;
  });
  return fits;
}
