/**
 * Runs half-sweeps on several threads over shared memory. The calling thread works too, so
 * `numThreads` threads compute in all. Workers run the built `worker.js` beside this module; when
 * it is absent (TypeScript sources under a test runner before a build), the pool reports so and
 * the caller runs single-threaded: results are identical either way, only slower.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { drainBlocks, scratchFor, type AlsState, type Scratch, type Side } from "./kernel.js";

/** The built worker entry: beside this module in dist, or dist/ when running from src/. */
export function workerScript(): URL | undefined {
  for (const rel of ["./worker.js", "../dist/worker.js"]) {
    const url = new URL(rel, import.meta.url);
    if (url.protocol === "file:" && existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

export interface SweepRunner {
  /** Solves every row of `side`; resolves when all threads are done. */
  run(side: Side): Promise<void>;
  readonly threads: number;
  close(): Promise<void>;
}

/** All rows on the calling thread. */
export function inProcessRunner(state: AlsState, scratch: Scratch = scratchFor(state)): SweepRunner {
  return {
    threads: 1,
    async run(side) {
      Atomics.store(state.counters, side, 0);
      drainBlocks(state, side, scratch);
    },
    async close() {},
  };
}

/**
 * `numThreads - 1` workers plus the calling thread. Returns undefined when no built worker
 * script exists.
 */
export async function threadRunner(state: AlsState, numThreads: number): Promise<SweepRunner | undefined> {
  if (numThreads <= 1) return inProcessRunner(state);
  const script = workerScript();
  if (!script) return undefined;
  const workers = Array.from({ length: numThreads - 1 }, () => new Worker(script, { workerData: { state } }));
  const scratch = scratchFor(state);
  let failure: Error | undefined;
  const pending = new Set<{ resolve: () => void; reject: (e: Error) => void; worker: Worker }>();
  for (const worker of workers) {
    worker.on("error", (error) => {
      failure = error;
      for (const p of pending) p.reject(error);
    });
    worker.on("exit", (code) => {
      if (code !== 0 && !failure) {
        failure = new Error(`als worker exited with code ${code}`);
        for (const p of pending) p.reject(failure);
      }
    });
  }
  let closed = false;
  return {
    threads: numThreads,
    async run(side) {
      if (failure) throw failure;
      Atomics.store(state.counters, side, 0);
      const done = workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const entry = { resolve, reject, worker };
            pending.add(entry);
            worker.once("message", () => {
              pending.delete(entry);
              resolve();
            });
          }),
      );
      for (const worker of workers) worker.postMessage(side);
      drainBlocks(state, side, scratch);
      await Promise.all(done);
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
