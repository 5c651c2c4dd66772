/**
 * Worker threads as every package runs them: its built worker script found beside the calling
 * module (in dist/) or, when the caller runs from src/ (the tests), in the package's dist/; and one
 * job run on a worker with its messages, errors, early exit and the abort signal settled once.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { InterruptedError } from "./errors.js";

/**
 * The built worker script `name` (e.g. `worker.js`) of the package whose module is `moduleUrl`
 * (its `import.meta.url`): beside that module, or in ../dist/; undefined when not built (callers
 * then do the work on their own thread).
 */
export function builtWorker(moduleUrl: string, name: string): URL | undefined {
  for (const rel of [`./${name}`, `../dist/${name}`]) {
    const url = new URL(rel, moduleUrl);
    if (url.protocol === "file:" && existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/**
 * Runs one job on a new worker (`workerData` = `job`): `onMessage` takes each message it posts and
 * returns true when the job is done, and the worker is then stopped. A throw from `onMessage`, a
 * crash, an exit before done, or the signal's abort (InterruptedError, "interrupted while
 * `what`") rejects, and stops the worker too.
 */
export function runWorker(
  script: URL,
  job: unknown,
  what: string,
  onMessage: (message: Record<string, unknown>) => boolean,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(new InterruptedError(`interrupted while ${what}`));
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: job });
    let settled = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      void worker.terminate();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => settle(new InterruptedError(`interrupted while ${what}`));
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.on("message", (message: Record<string, unknown>) => {
      try {
        if (onMessage(message)) settle();
      } catch (error) {
        settle(error);
      }
    });
    worker.once("error", (error) => settle(error));
    worker.once("exit", (code) => settle(new Error(`${what}: the worker thread exited (code ${code}) before its work was done`)));
  });
}
