/**
 * The per-key locks under locks/: `<key>.lock`, created with O_EXCL and holding its holder's
 * identity (see owner.ts), renewed by a heartbeat so that a driver on another host sharing the
 * cache does not take it over. A stale lock is taken over: renamed aside, judged again, deleted.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { parseJsonText, pidAlive } from "@ms/contracts";
import { errnoCode, injectFault, storageError, type CacheFault } from "./faults.js";
import { onExit, renewEvery, sleep, unlinkQuietly } from "./hooks.js";
import { judgeOwner, selfOwner, type Owner, type OwnerState } from "./owner.js";
import { OwnerSchema } from "./schemas.js";

export type LockInfo = Owner & { text: string; state: OwnerState; alive: boolean };

/** A held lock; release it exactly once. */
export interface HeldLock {
  key: string;
  /** Whether the lock file is still ours (it is not if another process judged it stale). */
  stillHeld(): Promise<boolean>;
  release(): Promise<void>;
}

const LOCK_NAME_RE = /^([0-9a-f]{64})\.lock$/;

export class Locks {
  constructor(
    readonly dir: string,
    private readonly root: string,
    private readonly leaseMs: () => number,
    private readonly fault: CacheFault | undefined,
  ) {}

  file(key: string): string {
    return path.join(this.dir, `${key}.lock`);
  }

  /** The holder of a lock, judged now; undefined when there is none. */
  async holder(key: string): Promise<LockInfo | undefined> {
    return this.read(this.file(key));
  }

  private async read(file: string): Promise<LockInfo | undefined> {
    let text: string;
    let mtimeMs: number;
    try {
      [text, mtimeMs] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file).then((s) => s.mtimeMs)]);
    } catch {
      return undefined;
    }
    const age = Date.now() - mtimeMs;
    let h: Owner;
    try {
      h = parseJsonText(text, OwnerSchema, file);
    } catch (error) {
      // Half-written by a process killed between create and write: stale once it is old enough.
      const judged = judgeOwner({ hostname: "?" }, age, Math.min(10_000, this.leaseMs()));
      const state = { ...judged, reason: `${judged.reason}; ${(error as Error).message}` };
      return { pid: 0, hostname: "?", startedAt: "?", text, state, alive: !state.stale };
    }
    const state = judgeOwner(h, age, this.leaseMs());
    return { ...h, text, state, alive: !state.stale };
  }

  /** Tries to take the lock once: O_EXCL create; a stale lock is taken over. */
  async tryLock(key: string, purpose: "compute" | "gc" = "compute"): Promise<HeldLock | undefined> {
    const file = this.file(key);
    const text = JSON.stringify({ ...selfOwner(), purpose, nonce: randomBytes(6).toString("hex") } satisfies Owner);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        injectFault(this.fault, "lock", file);
        const handle = await fs.open(file, "wx");
        try {
          await handle.writeFile(text);
        } finally {
          await handle.close();
        }
        return this.held(key, file, text);
      } catch (error) {
        if (errnoCode(error) !== "EEXIST") throw storageError(error, file, this.root);
      }
      const holder = await this.holder(key);
      if (holder === undefined) continue; // released between our create and read: try again
      if (!holder.state.stale) return undefined;
      if (!(await this.breakStale(file, holder.text))) return undefined;
    }
    return undefined;
  }

  private held(key: string, file: string, text: string): HeldLock {
    const forget = onExit(() => unlinkQuietly(file));
    const stop = renewEvery(this.leaseMs() / 4, file);
    let released = false;
    const stillHeld = async () => (await fs.readFile(file, "utf8").catch(() => "")) === text;
    return {
      key,
      stillHeld,
      release: async () => {
        if (released) return;
        released = true;
        stop();
        forget();
        // Never delete a lock that another process took over from us.
        if (await stillHeld()) await fs.unlink(file).catch(() => undefined);
      },
    };
  }

  /**
   * Removes a stale lock. It is renamed aside and judged again before deletion, so a live lock
   * that replaced it (or was renewed) in the meantime is put back rather than broken.
   */
  private async breakStale(file: string, staleText: string): Promise<boolean> {
    const aside = `${file}.stale-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      await fs.rename(file, aside);
    } catch {
      return true; // someone else removed it; retry the create
    }
    const again = await this.read(aside);
    if (!again || again.text !== staleText || !again.state.stale) {
      await fs.link(aside, file).catch(() => undefined);
      await fs.unlink(aside).catch(() => undefined);
      return false;
    }
    await fs.unlink(aside).catch(() => undefined);
    return true;
  }

  /**
   * Waits for the lock of `key`. `ready()` is asked before each wait so that a result published by
   * the holder is reused instead of waiting for the lock itself. `onWait` hears who holds it and at
   * most how long it will be waited for (undefined: a live process on this host, until it ends),
   * again whenever the holder changes. A stale lock is never waited on; `signal` ends the wait.
   */
  async acquire<T>(
    key: string,
    ready: () => Promise<T | undefined>,
    onWait: (holder: LockInfo, waitMs: number | undefined) => void,
    signal?: AbortSignal,
  ): Promise<{ lock: HeldLock } | { value: T }> {
    let delay = 25;
    let told: string | undefined;
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const lock = await this.tryLock(key);
      if (lock) return { lock };
      const value = await ready();
      if (value !== undefined) return { value };
      const holder = await this.holder(key);
      if (holder && holder.text !== told) {
        onWait(holder, holder.state.waitMs);
        told = holder.text;
      }
      await sleep(Math.min(delay, holder?.state.waitMs ?? delay) + 5, signal);
      delay = Math.min(delay * 2, 250);
    }
  }

  /** Stale locks of any host, and `.stale-<pid>-` renames left by a killed taker: removed unless `dryRun`. */
  async cleanStale(dryRun: boolean): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const full = path.join(this.dir, name);
      if (!LOCK_NAME_RE.test(name)) {
        const pid = Number(/\.stale-(\d+)-/.exec(name)?.[1]);
        if (!pidAlive(pid)) {
          removed.push(full);
          if (!dryRun) await fs.rm(full, { force: true }).catch(() => undefined);
        }
        continue;
      }
      const holder = await this.read(full);
      if (!holder?.state.stale) continue;
      removed.push(full);
      if (!dryRun) await this.breakStale(full, holder.text);
    }
    return removed;
  }
}
