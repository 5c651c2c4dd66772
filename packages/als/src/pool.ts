/**
 * Runs half-sweeps over shared memory, in worker threads only: the calling thread never
 * computes, so its event loop stays free to handle signals (SIGINT/SIGTERM abort the step's
 * `AbortSignal`) while a sweep runs, however long one row takes. `numThreads` workers compute
 * (one with numThreads 1). Workers run the built `worker.js` beside this module; when it is
 * absent (TypeScript sources under a test runner before a build), the pool reports so and the
 * caller runs on its own thread in time slices that yield to the event loop: results are
 * identical either way, only slower.
 *
 * Aborting sets the state's shared abort flag, which every sweep thread reads before each row;
 * `run` rejects with InterruptedError at once, and `close` terminates the workers.
 */
import { builtWorker, InterruptedError, MsError } from "@ms/contracts";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { SIDE_USERS, type AlsState, type Side } from "./kernel-types.js";
import { scratchFor, solveRows, type Scratch } from "./kernel.js";

/** The built worker entry: beside this module in dist, or dist/ when running from src/. */
export const workerScript = (): URL | undefined => builtWorker(import.meta.url, "worker.js");

export interface SweepRunner {
  /** Solves every row of `side`; resolves when all threads are done, rejects with InterruptedError on abort. */
  run(side: Side): Promise<void>;
  readonly threads: number;
  close(): Promise<void>;
}

/** The error an aborted sweep ends with: the signal's reason when it is one of ours, else InterruptedError. */
export function interruption(signal: AbortSignal | undefined): MsError {
  const reason: unknown = signal?.reason;
  return reason instanceof MsError ? reason : new InterruptedError("als: interrupted");
}

/** Raises the state's abort flag when `signal` aborts (at once if it already has); returns the detach function. */
function linkAbort(state: AlsState, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const raise = () => Atomics.store(state.abort, 0, 1);
  if (signal.aborted) {
    raise();
    return () => undefined;
  }
  signal.addEventListener("abort", raise, { once: true });
  return () => signal.removeEventListener("abort", raise);
}

/** Longest stretch the in-process runner computes before it lets the event loop run. */
const SLICE_MS = 20;

/**
 * All rows on the calling thread, one row at a time, yielding to the event loop every SLICE_MS
 * so that a signal handler can run and abort it: the fallback when no worker script is built.
 */
export function inProcessRunner(state: AlsState, scratch: Scratch = scratchFor(state), signal?: AbortSignal): SweepRunner {
  const detach = linkAbort(state, signal);
  return {
    threads: 1,
    async run(side) {
      if (Atomics.load(state.abort, 0) !== 0) throw interruption(signal);
      const blocks = side === SIDE_USERS ? state.userBlocks : state.itemBlocks;
      const rows = blocks[blocks.length - 1];
      let sliceStart = performance.now();
      for (let row = 0; row < rows; row++) {
        solveRows(state, side, row, row + 1, scratch);
        if (performance.now() - sliceStart >= SLICE_MS) {
          await yieldToEventLoop();
          if (Atomics.load(state.abort, 0) !== 0) throw interruption(signal);
          sliceStart = performance.now();
        }
      }
      if (Atomics.load(state.abort, 0) !== 0) throw interruption(signal);
    },
    async close() {
      detach();
    },
  };
}

/**
 * `numThreads` workers; the calling thread only waits. Returns undefined when no built worker
 * script exists.
 */
export async function threadRunner(state: AlsState, numThreads: number, signal?: AbortSignal): Promise<SweepRunner | undefined> {
  const script = workerScript();
  if (!script) return undefined;
  const workers = Array.from({ length: Math.max(1, numThreads) }, () => new Worker(script, { workerData: { state } }));
  let failure: Error | undefined;
  let closed = false;
  const pending = new Set<(error: Error) => void>();
  const fail = (error: Error) => {
    failure ??= error;
    for (const reject of pending) reject(failure);
  };
  for (const worker of workers) {
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (code !== 0 && !closed) fail(new Error(`als worker exited with code ${code}`));
    });
  }
  const detach = linkAbort(state, signal);
  const onAbort = () => fail(interruption(signal));
  signal?.addEventListener("abort", onAbort, { once: true });
  return {
    threads: workers.length,
    async run(side) {
      if (signal?.aborted) throw interruption(signal);
      if (failure) throw failure;
      Atomics.store(state.counters, side, 0);
      let rejectRun: (error: Error) => void = () => undefined;
      const aborted = new Promise<never>((_, reject) => {
        rejectRun = reject;
      });
      pending.add(rejectRun);
      try {
        const done = workers.map((worker) => new Promise<void>((resolve) => worker.once("message", () => resolve())));
        for (const worker of workers) worker.postMessage(side);
        await Promise.race([Promise.all(done), aborted]);
      } finally {
        pending.delete(rejectRun);
      }
      // A worker that saw the flag returned early: the sweep is incomplete even if no event fired yet.
      if (Atomics.load(state.abort, 0) !== 0) throw interruption(signal);
    },
    async close() {
      if (closed) return;
      closed = true;
      detach();
      signal?.removeEventListener("abort", onAbort);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
