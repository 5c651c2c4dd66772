/**
 * Process-level helpers of the cache's locks and leases: a sleep that an AbortSignal ends, a
 * heartbeat that does not keep the process alive, and files removed if the process exits without
 * cleaning up (errors, Ctrl-C).
 */
import { promises as fs, unlinkSync } from "node:fs";

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Calls `beat` every `ms` without keeping the process alive; returns the stopper. */
export function heartbeat(ms: number, beat: () => Promise<unknown>): () => void {
  const timer = setInterval(() => void beat().catch(() => undefined), Math.max(10, Math.floor(ms)));
  timer.unref();
  return () => clearInterval(timer);
}

/** Renews a lock or lease file (its mtime) every `ms`; returns the stopper. */
export function renewEvery(ms: number, file: string): () => void {
  return heartbeat(ms, async () => {
    const now = new Date();
    await fs.utimes(file, now, now);
  });
}

const exitCleanup = new Set<() => void>();
let exitHookInstalled = false;

/** Runs `fn` at process exit unless the returned function is called first. */
export function onExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const f of exitCleanup) {
        try {
          f();
        } catch {
          // best effort at exit
        }
      }
    });
  }
  exitCleanup.add(fn);
  return () => exitCleanup.delete(fn);
}

export function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
