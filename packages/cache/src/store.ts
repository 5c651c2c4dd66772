/**
 * The cache's storage adapter: entries, locks, leases and temp directories are only ever touched
 * through a CacheStore (gc also ages the memo files in meta/, which their owner, the run report,
 * writes itself). The directories are those of `cacheLayout` (layout.ts); the work is split between
 * entries.ts, locks.ts and leases.ts, and this class holds them together with what spans them
 * (creating the layout, gc's safe removal, the leftovers of killed processes).
 *
 * A `fault` option makes the store's writes fail with an errno, so a read-only or full cache
 * directory can be tested as root.
 */
import { randomBytes } from "node:crypto";
import { promises as fs, rmSync } from "node:fs";
import path from "node:path";
import { StorageError, pidAlive, type Manifest } from "@ms/contracts";
import { Entries, tempName, type EntryCheck } from "./entries.js";
import { errnoCode, injectFault, storageError, type CacheFault } from "./faults.js";
import { onExit } from "./hooks.js";
import { cacheLayout, type CacheLayout } from "./layout.js";
import { Lease, liveLeases, type LiveLeases } from "./leases.js";
import { Locks, type HeldLock, type LockInfo } from "./locks.js";
import { hostTag, leaseMsFromEnv, selfOwner } from "./owner.js";
import type { EntryInfo } from "./schemas.js";

/** `<pid>-...` (older drivers) or `<pid>@<host tag>-...`, optionally a dot-prefixed staging dir. */
const TMP_NAME_RE = /^\.?(\d+)(?:@([0-9a-f]{8}))?-/;

export interface CacheStoreOptions {
  /** Lease of a lock or lease from another host (default `MS_LOCK_LEASE_MS`, else 60 s). */
  leaseMs?: number;
  /** Make the store's writes fail (tests of a read-only or full cache directory). */
  fault?: CacheFault;
}

export class CacheStore {
  readonly layout: CacheLayout;
  readonly root: string;
  readonly objects: string;
  readonly locks: string;
  readonly leases: string;
  readonly tmp: string;
  readonly meta: string;
  private readonly entries: Entries;
  private readonly lockDir: Locks;
  private readonly leaseOverride: number | undefined;
  private readonly fault: CacheFault | undefined;
  private layoutReady = false;

  constructor(root: string, options: CacheStoreOptions = {}) {
    this.layout = cacheLayout(root);
    ({ root: this.root, objects: this.objects, locks: this.locks, leases: this.leases, tmp: this.tmp, meta: this.meta } = this.layout);
    this.leaseOverride = options.leaseMs;
    this.fault = options.fault;
    this.entries = new Entries(this.objects, this.tmp, this.root, this.fault);
    this.lockDir = new Locks(this.locks, this.root, () => this.leaseMs, this.fault);
  }

  /** The lease after which another host's lock or lease is stale (read at each use, for tests). */
  get leaseMs(): number {
    return this.leaseOverride ?? leaseMsFromEnv();
  }

  entryDir(key: string): string {
    return this.entries.dir(key);
  }

  lockFile(key: string): string {
    return this.lockDir.file(key);
  }

  /**
   * Throws a StorageError when the cache path exists but is not a usable directory (a file, say),
   * so that no command reports success on it. A cache that does not exist yet is fine.
   */
  async assertUsable(): Promise<void> {
    for (const dir of [this.root, this.objects]) {
      let st;
      try {
        st = await fs.stat(dir);
      } catch (error) {
        if (errnoCode(error) === "ENOENT") return;
        throw storageError(error, dir, this.root);
      }
      if (!st.isDirectory())
        throw new StorageError(
          `the cache directory ${this.root} is not a directory (${dir} is a file); point --cache-dir or MS_CACHE_DIR at a directory`,
        );
    }
  }

  /** Creates the directories (once per process). */
  async ensureLayout(): Promise<void> {
    if (this.layoutReady) return;
    await this.assertUsable();
    for (const dir of [this.objects, this.locks, this.tmp, this.meta]) {
      // Existing directories are left alone, so a read-only cache can still serve hits.
      const st = await fs.stat(dir).catch(() => undefined);
      if (st?.isDirectory()) continue;
      try {
        injectFault(this.fault, "lock", dir);
        await fs.mkdir(dir, { recursive: true });
      } catch (error) {
        throw storageError(error, dir, this.root);
      }
    }
    // leases/ is optional: a read-only cache made by an older driver has none, and needs none.
    await fs.mkdir(this.leases, { recursive: true }).catch(() => undefined);
    this.layoutReady = true;
  }

  /**
   * Whether the entry of `key` may be served, checked every time it is used: manifest and
   * entry.json readable and consistent, every listed path inside the entry, every file's sha256
   * the manifest's. A file is re-hashed unless its identity (device, inode, size, mtime, ctime)
   * is the one recorded in entry.json when it last hashed correctly; the updated identities come
   * back in `entry` (persisted by `touch`). An entry gc is removing right now is `busy`.
   */
  async checkEntry(key: string): Promise<EntryCheck> {
    const holder = await this.lockHolder(key);
    if (holder?.purpose === "gc" && !holder.state.stale) return { status: "busy" };
    return this.entries.inspect(key, false);
  }

  /** Re-hashes every file of an entry against its manifest (`ms cache verify`). */
  async deepVerify(key: string): Promise<{ ok: boolean; problems: string[] }> {
    const check = await this.entries.inspect(key, true);
    if (check.status === "hit") return { ok: true, problems: [] };
    if (check.status === "damaged") return { ok: false, problems: check.problems };
    return { ok: false, problems: [`${this.entryDir(key)}: missing`] };
  }

  readEntryInfo(key: string): Promise<EntryInfo | undefined> {
    return this.entries.readInfo(key);
  }

  listKeys(): Promise<string[]> {
    return this.entries.listKeys();
  }

  entrySize(key: string): Promise<number> {
    return this.entries.size(key);
  }

  /**
   * A fresh path under tmp/ for a step to build its output in (not created: steps create their
   * own output directory). Removed at exit unless published.
   */
  tempPath(step: string): { dir: string; discard(): Promise<void> } {
    const dir = tempName(this.tmp, step);
    const forget = onExit(() => rmSync(dir, { recursive: true, force: true }));
    return {
      dir,
      discard: async () => {
        forget();
        await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
    };
  }

  /** See `Entries.publish`: verify, write entry.json, rename into objects/<key>. */
  publishEntry(tempDir: string, info: EntryInfo): Promise<{ dir: string; manifest: Manifest; entry: EntryInfo }> {
    return this.entries.publish(tempDir, info);
  }

  /** `publishEntry`, answering only the entry's directory. */
  async publish(tempDir: string, info: EntryInfo): Promise<string> {
    return (await this.publishEntry(tempDir, info)).dir;
  }

  /** Records a use of an entry and its files' identities; best effort. */
  touch(info: EntryInfo): Promise<boolean> {
    return this.entries.touch(info);
  }

  /** Deletes an entry: renamed into tmp/ first so that no reader sees half of it. */
  removeEntry(key: string): Promise<void> {
    return this.entries.remove(key);
  }

  /**
   * Removes an entry unless a live run uses it: under the key's lock (marked gc, so a run that
   * writes its lease and then finds this lock waits), the leases are read after the lock is taken;
   * a run either wrote its lease before (and gc sees it) or finds gc's lock (and waits for it).
   */
  async removeUnused(key: string): Promise<"removed" | "locked" | "in-use"> {
    const lock = await this.tryLock(key, "gc");
    if (!lock) return "locked";
    try {
      if ((await this.liveLeases()).keys.has(key)) return "in-use";
      await this.removeEntry(key);
      return "removed";
    } finally {
      await lock.release();
    }
  }

  /** A lease for a new session (nothing is written until it protects a key). */
  newLease(): Lease {
    const file = path.join(this.leases, `${process.pid}-${randomBytes(4).toString("hex")}.lease`);
    return new Lease(file, { ...selfOwner(), nonce: randomBytes(6).toString("hex") }, this.leaseMs, this.fault);
  }

  /** Every lease file, judged: the keys of live ones, and the stale files (with `clean`, removed). */
  liveLeases(options: { clean?: boolean } = {}): Promise<LiveLeases> {
    return liveLeases(this.leases, this.leaseMs, options);
  }

  /** The holder of a lock, judged now; undefined when there is none. */
  lockHolder(key: string): Promise<LockInfo | undefined> {
    return this.lockDir.holder(key);
  }

  /** Tries to take the lock once: O_EXCL create; a stale lock is taken over. */
  tryLock(key: string, purpose: "compute" | "gc" = "compute"): Promise<HeldLock | undefined> {
    return this.lockDir.tryLock(key, purpose);
  }

  /** See `Locks.acquire`: the lock of `key`, or the value `ready()` finds while waiting for it. */
  acquire<T>(
    key: string,
    ready: () => Promise<T | undefined>,
    onWait: (holder: LockInfo, waitMs: number | undefined) => void,
    signal?: AbortSignal,
  ): Promise<{ lock: HeldLock } | { value: T }> {
    return this.lockDir.acquire(key, ready, onWait, signal);
  }

  /**
   * Removes leftovers of killed processes: temp directories, stale locks (of this host or another)
   * and stale leases. They are never entries; run before each pipeline and by `gc`.
   */
  async cleanLeftovers(options: { dryRun?: boolean } = {}): Promise<{ tmp: string[]; locks: string[] }> {
    const dryRun = options.dryRun === true;
    const leases = await this.liveLeases({ clean: !dryRun });
    const removed = { tmp: [] as string[], locks: [...leases.stale] };
    const myTag = hostTag(selfOwner());
    for (const name of await fs.readdir(this.tmp).catch(() => [] as string[])) {
      const m = TMP_NAME_RE.exec(name);
      const pid = Number(m?.[1]);
      const tag = m?.[2];
      const full = path.join(this.tmp, name);
      if (tag === undefined || tag === myTag) {
        if (pidAlive(pid)) continue;
      } else {
        // Another host's build: kept while its run holds a lease, or while it was touched recently.
        if (leases.owners.has(`${pid}@${tag}`)) continue;
        const st = await fs.stat(full).catch(() => undefined);
        if (!st || Date.now() - st.mtimeMs <= this.leaseMs) continue;
      }
      removed.tmp.push(full);
      if (!dryRun) await fs.rm(full, { recursive: true, force: true }).catch(() => undefined);
    }
    removed.locks.push(...(await this.lockDir.cleanStale(dryRun)));
    return removed;
  }

  /** Memo files older than `ms` (for gc). */
  async staleMeta(olderThanMs: number, dryRun: boolean): Promise<string[]> {
    const out: string[] = [];
    for (const name of await fs.readdir(this.meta).catch(() => [] as string[])) {
      const full = path.join(this.meta, name);
      const st = await fs.stat(full).catch(() => undefined);
      if (!st || Date.now() - st.mtimeMs < olderThanMs) continue;
      out.push(full);
      if (!dryRun) await fs.rm(full, { force: true }).catch(() => undefined);
    }
    return out;
  }

  /** Whether the cache directory exists at all (read commands create nothing). */
  async exists(): Promise<boolean> {
    return fs.stat(this.objects).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  /** The manifest and entry.json of an entry, for logging only the small files. */
  smallFiles(key: string, extra: readonly string[] = []): string[] {
    return this.entries.smallFiles(key, extra);
  }
}
