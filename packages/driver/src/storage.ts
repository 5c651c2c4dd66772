/**
 * The cache's storage adapter: every file-system access to the cache directory goes through here.
 *
 *   <root>/objects/<key>/   one published entry: the step's files, manifest.json, entry.json
 *   <root>/locks/<key>.lock held while a key is computed or removed (O_EXCL; the holder's identity)
 *   <root>/leases/<pid>-<n>.lease  keys a live run uses; gc leaves them alone
 *   <root>/tmp/<pid>@<host>-...   where entries are built before the atomic rename into objects/
 *   <root>/meta/            memo files of earlier versions; gc removes them by age
 *
 * A lock or lease names its holder: host name, pid, the process's start time (/proc/<pid>/stat
 * field 22), boot id and pid namespace. On the same host (all of those equal) it is stale as soon as
 * the pid is gone or is another process; from anywhere else it is stale once its holder has not
 * renewed it (mtime, a heartbeat) for a lease (60 s, `MS_LOCK_LEASE_MS`).
 *
 * `MS_CACHE_FAULT=<ERRNO>[:<op>]` (op: lock, publish, touch, meta, or all) makes this adapter's
 * writes fail with that errno, so a read-only or full cache directory can be tested as root.
 */
import { randomBytes } from "node:crypto";
import { promises as fs, rmSync, unlinkSync, readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  CorruptArtifactError,
  MANIFEST_FILE,
  StorageError,
  sha256Hex,
  pidAlive,
  verifyArtifact,
  writeFileAtomic,
  type IdentityMemo,
  type Manifest,
} from "@ms/contracts";

export const ENTRY_FILE = "entry.json";

/** What the driver records about an entry beside the step's own manifest. */
export interface EntryInfo {
  key: string;
  step: string;
  version: string;
  codeDigest: string;
  /** The parameters that entered the key, under the driver's names. */
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  /** The manifest's content digest, recomputed from the entry's files when it was published. */
  outputDigest: string;
  createdAt: string;
  lastUsedAt: string;
  /** The tracking run that computed the entry. */
  producedByRun: string | null;
  /** File identities when last hashed (publish, later re-hashes): a hit re-hashes only changed files. */
  identities?: IdentityMemo;
  /** Digest of the entry's metrics.json (the step's metric history, replayed into the child run of a hit). */
  history?: string;
}

export type EntryCheck =
  | { status: "hit"; dir: string; manifest: Manifest; entry: EntryInfo; memoChanged: boolean }
  | { status: "missing" }
  | { status: "damaged"; problems: string[] }
  /** `gc` holds the key's lock and may be removing the entry: not to be used now. */
  | { status: "busy" };

/** Who holds a lock or a lease. */
export interface Owner {
  pid: number;
  hostname: string;
  startedAt: string;
  /** /proc/<pid>/stat field 22 (clock ticks since boot), so a reused pid is told apart. */
  startTime?: string;
  bootId?: string;
  pidNs?: string;
  /** Locks only: computing a key, or gc removing it. */
  purpose?: "compute" | "gc";
  nonce?: string;
}

/** A holder as judged now. */
export interface OwnerState {
  stale: boolean;
  /** Why it is (or is not) stale, for logs. */
  reason: string;
  /** At most how long until it turns stale unless renewed; undefined for a live process on this host. */
  waitMs: number | undefined;
}

export type LockInfo = Owner & { text: string; state: OwnerState; alive: boolean };

export type FaultOp = "lock" | "publish" | "touch" | "meta" | "clean";

const FAULT_ERRNOS = new Set(["EROFS", "ENOSPC", "EDQUOT", "EACCES", "EIO"]);

export const DEFAULT_LEASE_MS = 60_000;

/** The lease of a lock or lease file held by another host (`MS_LOCK_LEASE_MS`, default 60 s). */
export function leaseMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.MS_LOCK_LEASE_MS);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_LEASE_MS;
}

/** Reads MS_CACHE_FAULT and throws the injected errno for the operations it names. */
function injectFault(op: FaultOp, target: string): void {
  const spec = process.env.MS_CACHE_FAULT;
  if (!spec) return;
  const [errno, only = "all"] = spec.split(":");
  if (!FAULT_ERRNOS.has(errno)) return;
  if (only !== "all" && only !== op) return;
  const error = new Error(`${errno}: injected fault (MS_CACHE_FAULT), ${op} '${target}'`) as NodeJS.ErrnoException;
  error.code = errno;
  throw error;
}

function storageError(error: unknown, target: string, root: string): unknown {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === "ENOTDIR" || errno === "EEXIST") {
    return new StorageError(`the cache directory ${root} is not a directory (${errno} at ${target}); point --cache-dir or MS_CACHE_DIR at a directory`, { cause: error });
  }
  if (errno && (FAULT_ERRNOS.has(errno) || errno === "EPERM" || errno === "EFBIG")) {
    const why = errno === "EROFS" ? "is read-only" : errno === "ENOSPC" || errno === "EDQUOT" || errno === "EFBIG" ? "is full" : "cannot be written";
    return new StorageError(
      `the cache directory ${root} ${why} (${errno} writing ${target}); free space, fix its permissions, or choose another with --cache-dir or MS_CACHE_DIR`,
      { cause: error },
    );
  }
  return error;
}

export { pidAlive };


/** A process's start time (/proc/<pid>/stat field 22), or undefined where /proc cannot tell. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name start at field 3 (state); field 22 is index 19.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function readOr(read: () => string): string | undefined {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
}

let self: Owner | undefined;
/** This process as a lock or lease holder (computed once). */
export function selfOwner(): Owner {
  self ??= {
    pid: process.pid,
    hostname: os.hostname(),
    startedAt: new Date().toISOString(),
    startTime: processStartTime(process.pid),
    bootId: readOr(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8")),
    pidNs: readOr(() => readlinkSync("/proc/self/ns/pid")),
  };
  return self;
}

/** A short tag naming a host (host name, boot, pid namespace): pids compare only under equal tags. */
export function hostTag(o: Pick<Owner, "hostname" | "bootId" | "pidNs">): string {
  return sha256Hex(`${o.hostname}\n${o.bootId ?? ""}\n${o.pidNs ?? ""}`).slice(0, 8);
}

/**
 * Whether a lock or lease holder is stale. `ageMs` is how long ago the file was last renewed.
 * A holder on this host is checked through its pid and start time (never by age, so a long step
 * keeps its lock); anything that cannot be checked that way expires with its lease.
 */
export function judgeOwner(o: Partial<Owner>, ageMs: number, leaseMs: number): OwnerState {
  const me = selfOwner();
  const sameHost = o.hostname === me.hostname && (o.bootId ?? me.bootId) === me.bootId && (o.pidNs ?? me.pidNs) === me.pidNs;
  if (sameHost && typeof o.pid === "number") {
    if (!pidAlive(o.pid)) return { stale: true, reason: `process ${o.pid} on this host is gone`, waitMs: 0 };
    const now = o.startTime !== undefined ? processStartTime(o.pid) : undefined;
    if (now !== undefined && now !== o.startTime) return { stale: true, reason: `pid ${o.pid} is now another process (start time ${now}, not ${o.startTime})`, waitMs: 0 };
    if (now !== undefined) return { stale: false, reason: `process ${o.pid} on this host is running`, waitMs: undefined };
  }
  const where = sameHost ? `process ${String(o.pid)} (start time unknown)` : `${String(o.hostname)} pid ${String(o.pid)}`;
  if (ageMs > leaseMs) return { stale: true, reason: `${where} has not renewed it for ${Math.round(ageMs)} ms (lease ${leaseMs} ms)`, waitMs: 0 };
  return { stale: false, reason: `${where} renewed it ${Math.round(ageMs)} ms ago (lease ${leaseMs} ms)`, waitMs: Math.max(0, Math.ceil(leaseMs - ageMs)) };
}

/** What is at `dir` (device, inode, birth time), undefined when nothing is. */
async function dirIdentity(dir: string): Promise<string | undefined> {
  const st = await fs.lstat(dir, { bigint: true }).catch(() => undefined);
  return st ? `${st.dev}:${st.ino}:${st.birthtimeNs}` : undefined;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
function heartbeat(ms: number, beat: () => Promise<unknown>): () => void {
  const timer = setInterval(() => void beat().catch(() => undefined), Math.max(10, Math.floor(ms)));
  timer.unref();
  return () => clearInterval(timer);
}

/** A held lock; release it exactly once. */
export interface HeldLock {
  key: string;
  /** Whether the lock file is still ours (it is not if another process judged it stale). */
  stillHeld(): Promise<boolean>;
  release(): Promise<void>;
}

/** Things registered for removal if the process exits without cleaning up (errors, Ctrl-C). */
const exitCleanup = new Set<() => void>();
let exitHookInstalled = false;
function onExit(fn: () => void): () => void {
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

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

const KEY_RE = /^[0-9a-f]{64}$/;
/** `<pid>-...` (older drivers) or `<pid>@<host tag>-...`, optionally a dot-prefixed staging dir. */
const TMP_NAME_RE = /^\.?(\d+)(?:@([0-9a-f]{8}))?-/;

/**
 * The keys a run uses, in one file under leases/. Written (atomically) before an entry is checked,
 * renewed by a heartbeat, removed when the session closes; `gc` skips every key of a live lease.
 */
export class Lease {
  private readonly keys = new Set<string>();
  private stopBeat: (() => void) | undefined;
  private forget: (() => void) | undefined;
  private writable = true;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly owner: Owner,
    private readonly leaseMs: number,
  ) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Adds `key` and rewrites the lease; false when the cache cannot be written (nothing to protect against then but a read-only gc). */
  async protect(key: string): Promise<boolean> {
    if (this.closed) throw new Error("cache session is closed");
    if (this.keys.has(key)) return this.writable;
    this.keys.add(key);
    try {
      injectFault("lock", this.file);
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, JSON.stringify({ ...this.owner, keys: [...this.keys] }));
      this.writable = true;
    } catch {
      this.writable = false;
      return false;
    }
    this.forget ??= onExit(() => unlinkQuietly(this.file));
    this.stopBeat ??= heartbeat(this.leaseMs / 4, async () => {
      const now = new Date();
      await fs.utimes(this.file, now, now);
    });
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopBeat?.();
    this.forget?.();
    await fs.unlink(this.file).catch(() => undefined);
  }
}

export interface CacheStoreOptions {
  /** Lease of a lock or lease from another host (default `MS_LOCK_LEASE_MS`, else 60 s). */
  leaseMs?: number;
}

export class CacheStore {
  readonly root: string;
  readonly objects: string;
  readonly locks: string;
  readonly leases: string;
  readonly tmp: string;
  readonly meta: string;
  private readonly leaseOverride: number | undefined;
  private layoutReady = false;

  constructor(root: string, options: CacheStoreOptions = {}) {
    this.root = path.resolve(root);
    this.objects = path.join(this.root, "objects");
    this.locks = path.join(this.root, "locks");
    this.leases = path.join(this.root, "leases");
    this.tmp = path.join(this.root, "tmp");
    this.meta = path.join(this.root, "meta");
    this.leaseOverride = options.leaseMs;
  }

  /** The lease after which another host's lock or lease is stale (read at each use, for tests). */
  get leaseMs(): number {
    return this.leaseOverride ?? leaseMsFromEnv();
  }

  entryDir(key: string): string {
    return path.join(this.objects, key);
  }

  lockFile(key: string): string {
    return path.join(this.locks, `${key}.lock`);
  }

  private wrap(error: unknown, target: string): unknown {
    return storageError(error, target, this.root);
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
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return;
        throw this.wrap(error, dir);
      }
      if (!st.isDirectory()) throw new StorageError(`the cache directory ${this.root} is not a directory (${dir} is a file); point --cache-dir or MS_CACHE_DIR at a directory`);
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
        injectFault("lock", dir);
        await fs.mkdir(dir, { recursive: true });
      } catch (error) {
        throw this.wrap(error, dir);
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
    return this.inspect(key, false);
  }

  /** Re-hashes every file of an entry against its manifest (`ms cache verify`). */
  async deepVerify(key: string): Promise<{ ok: boolean; problems: string[] }> {
    const check = await this.inspect(key, true);
    if (check.status === "hit") return { ok: true, problems: [] };
    if (check.status === "damaged") return { ok: false, problems: check.problems };
    return { ok: false, problems: [`${this.entryDir(key)}: missing`] };
  }

  /**
   * `inspectOnce`, made safe against a concurrent publish or removal: an entry is only ever
   * replaced whole (one rename), so a directory that is gone or another one after a failed check
   * was raced, not damaged, and is judged again (missing before the check is simply missing).
   */
  private async inspect(key: string, deep: boolean): Promise<EntryCheck> {
    const dir = this.entryDir(key);
    for (let attempt = 1; ; attempt++) {
      const before = await dirIdentity(dir);
      if (before === undefined) return { status: "missing" };
      const check = await this.inspectOnce(key, deep);
      if (check.status !== "damaged" || attempt === 5) return check;
      if ((await dirIdentity(dir)) === before) return check;
    }
  }

  private async inspectOnce(key: string, deep: boolean): Promise<EntryCheck> {
    const dir = this.entryDir(key);
    const entryFile = path.join(dir, ENTRY_FILE);
    const problems: string[] = [];
    let entry: EntryInfo | undefined;
    try {
      const parsed = JSON.parse(await fs.readFile(entryFile, "utf8")) as EntryInfo;
      if (!parsed || typeof parsed !== "object" || typeof parsed.step !== "string") problems.push(`${entryFile}: not an entry record`);
      else if (parsed.key !== key) problems.push(`${entryFile}: names key ${String(parsed.key)}`);
      else entry = parsed;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        const exists = await fs.stat(dir).then(() => true, () => false);
        if (!exists) return { status: "missing" };
      }
      problems.push(`${entryFile}: ${(error as Error).message}`);
    }
    const memo = entry?.identities && typeof entry.identities === "object" ? entry.identities : {};
    const v = await verifyArtifact(dir, deep ? { deep: true } : { memo });
    problems.push(...v.problems);
    if (problems.length || !entry || !v.manifest) return { status: "damaged", problems };
    return { status: "hit", dir, manifest: v.manifest, entry: deep ? entry : { ...entry, identities: v.memo ?? {} }, memoChanged: v.memoChanged };
  }

  async readEntryInfo(key: string): Promise<EntryInfo | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.entryDir(key), ENTRY_FILE), "utf8")) as EntryInfo;
    } catch {
      return undefined;
    }
  }

  /** Keys of the published entries (names that look like a key; anything else is ignored). */
  async listKeys(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.objects);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.wrap(error, this.objects);
    }
    return names.filter((n) => KEY_RE.test(n)).sort();
  }

  /** Total bytes of an entry's files. */
  async entrySize(key: string): Promise<number> {
    const dir = this.entryDir(key);
    let total = 0;
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
      if (st?.isFile()) total += st.size;
    }
    return total;
  }

  /**
   * A fresh path under tmp/ for a step to build its output in (not created: steps create their
   * own output directory). Removed at exit unless published.
   */
  tempPath(step: string): { dir: string; discard(): Promise<void> } {
    const dir = path.join(this.tmp, `${process.pid}@${hostTag(selfOwner())}-${randomBytes(4).toString("hex")}-${step}`);
    const forget = onExit(() => rmSync(dir, { recursive: true, force: true }));
    return {
      dir,
      discard: async () => {
        forget();
        await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
    };
  }

  /**
   * Checks a finished temp directory (every file re-hashed against its manifest), writes
   * entry.json with the recomputed digest and the files' identities, and renames it to
   * objects/<key>. An entry already there is swapped out first and deleted; the caller holds the
   * key's lock.
   */
  async publishEntry(tempDir: string, info: EntryInfo): Promise<{ dir: string; manifest: Manifest; entry: EntryInfo }> {
    const target = this.entryDir(info.key);
    try {
      injectFault("publish", target);
    } catch (error) {
      throw this.wrap(error, target);
    }
    const v = await verifyArtifact(tempDir, { deep: true });
    if (!v.ok || !v.manifest) throw new CorruptArtifactError(`${info.step}: its output does not match its own manifest, not cached: ${v.problems.join("; ")}`);
    const entry: EntryInfo = { ...info, outputDigest: v.manifest.digest, identities: v.memo ?? {} };
    try {
      await fs.writeFile(path.join(tempDir, ENTRY_FILE), JSON.stringify(entry, null, 2) + "\n");
      const aside = path.join(this.tmp, `${process.pid}@${hostTag(selfOwner())}-${randomBytes(4).toString("hex")}-replaced`);
      let moved = false;
      try {
        await fs.rename(target, aside);
        moved = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      await fs.rename(tempDir, target);
      if (moved) await fs.rm(aside, { recursive: true, force: true });
    } catch (error) {
      throw this.wrap(error, target);
    }
    return { dir: target, manifest: v.manifest, entry };
  }

  /** `publishEntry`, answering only the entry's directory. */
  async publish(tempDir: string, info: EntryInfo): Promise<string> {
    return (await this.publishEntry(tempDir, info)).dir;
  }

  /**
   * Records a use of an entry (for `gc` by age) and the identities of its files as last verified;
   * best effort, a read-only cache still serves hits.
   */
  async touch(info: EntryInfo): Promise<boolean> {
    const file = path.join(this.entryDir(info.key), ENTRY_FILE);
    try {
      injectFault("touch", file);
      await writeFileAtomic(file, JSON.stringify({ ...info, lastUsedAt: new Date().toISOString() }, null, 2) + "\n");
      return true;
    } catch {
      return false;
    }
  }

  /** Deletes an entry: renamed into tmp/ first so that no reader sees half of it. */
  async removeEntry(key: string): Promise<void> {
    const aside = path.join(this.tmp, `${process.pid}@${hostTag(selfOwner())}-${randomBytes(4).toString("hex")}-removed`);
    try {
      injectFault("clean", this.entryDir(key));
      await fs.rename(this.entryDir(key), aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw this.wrap(error, this.entryDir(key));
    }
    await fs.rm(aside, { recursive: true, force: true });
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
    return new Lease(path.join(this.leases, `${process.pid}-${randomBytes(4).toString("hex")}.lease`), { ...selfOwner(), nonce: randomBytes(6).toString("hex") }, this.leaseMs);
  }

  /** Every lease file, judged: the keys of live ones, and the stale files (with `clean`, removed). */
  async liveLeases(options: { clean?: boolean } = {}): Promise<{ keys: Set<string>; owners: Set<string>; stale: string[] }> {
    const out = { keys: new Set<string>(), owners: new Set<string>(), stale: [] as string[] };
    for (const name of await fs.readdir(this.leases).catch(() => [] as string[])) {
      const full = path.join(this.leases, name);
      if (name.startsWith(".")) {
        // The temp file of a lease write (it lives for a moment) left by a kill.
        const st = await fs.stat(full).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > this.leaseMs) out.stale.push(full);
        continue;
      }
      let text: string;
      let mtimeMs: number;
      try {
        [text, mtimeMs] = await Promise.all([fs.readFile(full, "utf8"), fs.stat(full).then((s) => s.mtimeMs)]);
      } catch {
        continue; // closed meanwhile
      }
      let lease: Owner & { keys?: unknown };
      try {
        lease = JSON.parse(text) as Owner & { keys?: unknown };
      } catch {
        lease = { pid: 0, hostname: "?", startedAt: "?" };
      }
      if (judgeOwner(lease, Date.now() - mtimeMs, this.leaseMs).stale) {
        out.stale.push(full);
        continue;
      }
      out.owners.add(`${lease.pid}@${hostTag(lease)}`);
      if (Array.isArray(lease.keys)) for (const k of lease.keys) if (typeof k === "string") out.keys.add(k);
    }
    if (options.clean) for (const f of out.stale) await fs.rm(f, { force: true }).catch(() => undefined);
    return out;
  }

  /** The holder of a lock, judged now; undefined when there is none. */
  async lockHolder(key: string): Promise<LockInfo | undefined> {
    return this.readLock(this.lockFile(key));
  }

  private async readLock(file: string): Promise<LockInfo | undefined> {
    let text: string;
    let mtimeMs: number;
    try {
      [text, mtimeMs] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file).then((s) => s.mtimeMs)]);
    } catch {
      return undefined;
    }
    const age = Date.now() - mtimeMs;
    try {
      const h = JSON.parse(text) as Owner;
      const state = judgeOwner(h, age, this.leaseMs);
      return { ...h, text, state, alive: !state.stale };
    } catch {
      // Half-written by a process killed between create and write: stale once it is old enough.
      const state = judgeOwner({ hostname: "?" }, age, Math.min(10_000, this.leaseMs));
      return { pid: 0, hostname: "?", startedAt: "?", text, state, alive: !state.stale };
    }
  }

  /** Tries to take the lock once: O_EXCL create; a stale lock is taken over. */
  async tryLock(key: string, purpose: "compute" | "gc" = "compute"): Promise<HeldLock | undefined> {
    const file = this.lockFile(key);
    const text = JSON.stringify({ ...selfOwner(), purpose, nonce: randomBytes(6).toString("hex") } satisfies Owner);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        injectFault("lock", file);
        const handle = await fs.open(file, "wx");
        try {
          await handle.writeFile(text);
        } finally {
          await handle.close();
        }
        const forget = onExit(() => unlinkQuietly(file));
        // Renewed so that a driver on another host sharing this cache does not take it over.
        const stop = heartbeat(this.leaseMs / 4, async () => {
          const now = new Date();
          await fs.utimes(file, now, now);
        });
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
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw this.wrap(error, file);
      }
      const holder = await this.lockHolder(key);
      if (holder === undefined) continue; // released between our create and read: try again
      if (!holder.state.stale) return undefined;
      if (!(await this.breakStaleLock(file, holder.text))) return undefined;
    }
    return undefined;
  }

  /**
   * Removes a stale lock. It is renamed aside and judged again before deletion, so a live lock
   * that replaced it (or was renewed) in the meantime is put back rather than broken.
   */
  private async breakStaleLock(file: string, staleText: string): Promise<boolean> {
    const aside = `${file}.stale-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      await fs.rename(file, aside);
    } catch {
      return true; // someone else removed it; retry the create
    }
    const again = await this.readLock(aside);
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
      const holder = await this.lockHolder(key);
      if (holder && holder.text !== told) {
        onWait(holder, holder.state.waitMs);
        told = holder.text;
      }
      await sleep(Math.min(delay, holder?.state.waitMs ?? delay) + 5, signal);
      delay = Math.min(delay * 2, 250);
    }
  }

  /**
   * Removes leftovers of killed processes: temp directories, stale locks (of this host or another)
   * and stale leases. They are never entries; run before each pipeline and by `gc`.
   */
  async cleanLeftovers(options: { dryRun?: boolean } = {}): Promise<{ tmp: string[]; locks: string[] }> {
    const removed = { tmp: [] as string[], locks: [] as string[] };
    const leases = await this.liveLeases({ clean: !options.dryRun });
    removed.locks.push(...leases.stale);
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
      if (!options.dryRun) await fs.rm(full, { recursive: true, force: true }).catch(() => undefined);
    }
    for (const name of await fs.readdir(this.locks).catch(() => [] as string[])) {
      const full = path.join(this.locks, name);
      const m = /^([0-9a-f]{64})\.lock$/.exec(name);
      if (!m) {
        // A `.stale-<pid>-` rename left behind by a killed taker.
        const pid = Number(/\.stale-(\d+)-/.exec(name)?.[1]);
        if (!pidAlive(pid)) {
          removed.locks.push(full);
          if (!options.dryRun) await fs.rm(full, { force: true }).catch(() => undefined);
        }
        continue;
      }
      const holder = await this.readLock(full);
      if (!holder || !holder.state.stale) continue;
      removed.locks.push(full);
      if (!options.dryRun) await this.breakStaleLock(full, holder.text);
    }
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
    return fs.stat(this.objects).then((s) => s.isDirectory(), () => false);
  }

  /** The manifest file name inside an entry, for logging only the small files. */
  smallFiles(key: string, extra: readonly string[] = []): string[] {
    return [MANIFEST_FILE, ENTRY_FILE, ...extra].map((f) => path.join(this.entryDir(key), f));
  }
}
