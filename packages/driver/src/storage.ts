/**
 * The cache's storage adapter: every file-system access to the cache directory goes through here.
 *
 *   <root>/objects/<key>/   one published entry: the step's files, manifest.json, entry.json
 *   <root>/locks/<key>.lock held while a key is computed (O_EXCL; pid, hostname, start time)
 *   <root>/tmp/<pid>-...    where entries are built before the atomic rename into objects/
 *   <root>/meta/            small memo files (resolved parameters), safe to delete
 *
 * `MS_CACHE_FAULT=<ERRNO>[:<op>]` (op: lock, publish, touch, meta, or all) makes this adapter's
 * writes fail with that errno, so a read-only or full cache directory can be tested as root.
 */
import { randomBytes } from "node:crypto";
import { promises as fs, rmSync, unlinkSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { MANIFEST_FILE, StorageError, asStorageError, buildArtifactDir, digestFile, readManifest, writeManifest, type Manifest } from "@ms/contracts";

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
  /** Content digest of the step's output (the manifest's digest, or the raw ratings digest). */
  outputDigest: string;
  createdAt: string;
  lastUsedAt: string;
  /** The tracking run that computed the entry. */
  producedByRun: string | null;
}

export type EntryCheck =
  | { status: "hit"; dir: string; manifest: Manifest; entry: EntryInfo }
  | { status: "missing" }
  | { status: "damaged"; problems: string[] };

interface LockHolder {
  pid: number;
  hostname: string;
  startedAt: string;
}

export type FaultOp = "lock" | "publish" | "touch" | "meta" | "clean";

const FAULT_ERRNOS = new Set(["EROFS", "ENOSPC", "EDQUOT", "EACCES", "EIO"]);

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
  if (errno && (FAULT_ERRNOS.has(errno) || errno === "EPERM" || errno === "EFBIG")) {
    const why = errno === "EROFS" ? "is read-only" : errno === "ENOSPC" || errno === "EDQUOT" || errno === "EFBIG" ? "is full" : "cannot be written";
    return new StorageError(
      `the cache directory ${root} ${why} (${errno} writing ${target}); free space, fix its permissions, or choose another with --cache-dir or MS_CACHE_DIR`,
      { cause: error },
    );
  }
  return error;
}

/** Whether a process is still running (a zombie counts as gone: it will never release a lock). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A held lock; release it exactly once. */
export interface HeldLock {
  key: string;
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

export class CacheStore {
  readonly root: string;
  readonly objects: string;
  readonly locks: string;
  readonly tmp: string;
  readonly meta: string;
  private readonly hostname = os.hostname();
  private readonly startedAt = new Date().toISOString();
  private layoutReady = false;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.objects = path.join(this.root, "objects");
    this.locks = path.join(this.root, "locks");
    this.tmp = path.join(this.root, "tmp");
    this.meta = path.join(this.root, "meta");
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

  /** Creates the four directories (once per process). */
  async ensureLayout(): Promise<void> {
    if (this.layoutReady) return;
    for (const dir of [this.objects, this.locks, this.tmp, this.meta]) {
      // Existing directories are left alone, so a read-only cache can still serve hits.
      if (await fs.stat(dir).then((s) => s.isDirectory(), () => false)) continue;
      try {
        injectFault("lock", dir);
        await fs.mkdir(dir, { recursive: true });
      } catch (error) {
        throw this.wrap(error, dir);
      }
    }
    this.layoutReady = true;
  }

  /**
   * The cheap check used on every run: manifest and entry.json readable, every listed file present
   * with its recorded size. Contents are not hashed (that is `verify`).
   */
  async checkEntry(key: string): Promise<EntryCheck> {
    const dir = this.entryDir(key);
    let manifest: Manifest;
    try {
      manifest = await readManifest(dir);
    } catch (error) {
      const exists = await fs.stat(dir).then(() => true, () => false);
      return exists ? { status: "damaged", problems: [(error as Error).message] } : { status: "missing" };
    }
    const problems: string[] = [];
    let entry: EntryInfo | undefined;
    try {
      entry = JSON.parse(await fs.readFile(path.join(dir, ENTRY_FILE), "utf8")) as EntryInfo;
      if (entry.key !== key) problems.push(`${path.join(dir, ENTRY_FILE)}: names key ${String(entry.key)}`);
    } catch (error) {
      problems.push(`${path.join(dir, ENTRY_FILE)}: ${(error as Error).message}`);
    }
    await Promise.all(
      manifest.files.map(async (f) => {
        const full = path.join(dir, f.path);
        const st = await fs.stat(full).catch(() => undefined);
        if (!st) problems.push(`${full}: missing`);
        else if (st.size !== f.bytes) problems.push(`${full}: ${st.size} bytes, manifest says ${f.bytes}`);
      }),
    );
    if (problems.length || !entry) return { status: "damaged", problems };
    return { status: "hit", dir, manifest, entry };
  }

  /** Re-hashes every file of an entry against its manifest (`ms cache verify`). */
  async deepVerify(key: string): Promise<{ ok: boolean; problems: string[] }> {
    const shallow = await this.checkEntry(key);
    if (shallow.status === "missing") return { ok: false, problems: [`${this.entryDir(key)}: missing`] };
    if (shallow.status === "damaged") return { ok: false, problems: shallow.problems };
    const problems: string[] = [];
    for (const f of shallow.manifest.files) {
      const full = path.join(shallow.dir, f.path);
      const { digest } = await digestFile(full);
      if (digest !== `sha256:${f.sha256}`) problems.push(`${full}: content differs from the manifest (sha256 ${digest.slice(7, 19)}... vs ${f.sha256.slice(0, 12)}...)`);
    }
    return { ok: problems.length === 0, problems };
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
    const names = await fs.readdir(this.objects).catch(() => [] as string[]);
    return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
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
    const dir = path.join(this.tmp, `${process.pid}-${randomBytes(4).toString("hex")}-${step}`);
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
   * Writes entry.json into a finished temp directory and renames it to objects/<key>. A damaged
   * entry already there is swapped out first and deleted; the caller holds the key's lock.
   */
  async publish(tempDir: string, info: EntryInfo): Promise<string> {
    const target = this.entryDir(info.key);
    try {
      injectFault("publish", target);
      await fs.writeFile(path.join(tempDir, ENTRY_FILE), JSON.stringify(info, null, 2) + "\n");
      const aside = path.join(this.tmp, `${process.pid}-${randomBytes(4).toString("hex")}-replaced`);
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
    return target;
  }

  /** Records a use of an entry (for `gc` by age); best effort, a read-only cache still serves hits. */
  async touch(info: EntryInfo): Promise<boolean> {
    const file = path.join(this.entryDir(info.key), ENTRY_FILE);
    const temp = `${file}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      injectFault("touch", file);
      await fs.writeFile(temp, JSON.stringify({ ...info, lastUsedAt: new Date().toISOString() }, null, 2) + "\n");
      await fs.rename(temp, file);
      return true;
    } catch {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      return false;
    }
  }

  /** Deletes an entry: renamed into tmp/ first so that no reader sees half of it. */
  async removeEntry(key: string): Promise<void> {
    const aside = path.join(this.tmp, `${process.pid}-${randomBytes(4).toString("hex")}-removed`);
    try {
      injectFault("clean", this.entryDir(key));
      await fs.rename(this.entryDir(key), aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw this.wrap(error, this.entryDir(key));
    }
    await fs.rm(aside, { recursive: true, force: true });
  }

  private holderText(): string {
    return JSON.stringify({ pid: process.pid, hostname: this.hostname, startedAt: this.startedAt } satisfies LockHolder);
  }

  /** The holder of a lock, or undefined when there is none or it cannot be read. */
  async lockHolder(key: string): Promise<(LockHolder & { alive: boolean; text: string }) | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.lockFile(key), "utf8");
    } catch {
      return undefined;
    }
    try {
      const h = JSON.parse(text) as LockHolder;
      // A lock from another host cannot be checked: treat it as live.
      const alive = h.hostname !== this.hostname || pidAlive(h.pid);
      return { ...h, alive, text };
    } catch {
      // Half-written by a process killed between create and write: stale once it is old enough.
      const st = await fs.stat(this.lockFile(key)).catch(() => undefined);
      return { pid: 0, hostname: "?", startedAt: "?", alive: !!st && Date.now() - st.mtimeMs < 10_000, text };
    }
  }

  /** Tries to take the lock once: O_EXCL create; a lock of a dead process is taken over. */
  async tryLock(key: string): Promise<HeldLock | undefined> {
    const file = this.lockFile(key);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        injectFault("lock", file);
        const handle = await fs.open(file, "wx");
        try {
          await handle.writeFile(this.holderText());
        } finally {
          await handle.close();
        }
        const forget = onExit(() => {
          try {
            unlinkSync(file);
          } catch {
            // already gone
          }
        });
        let released = false;
        return {
          key,
          release: async () => {
            if (released) return;
            released = true;
            forget();
            await fs.unlink(file).catch(() => undefined);
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw this.wrap(error, file);
      }
      const holder = await this.lockHolder(key);
      if (holder === undefined) continue; // released between our create and read: try again
      if (holder.alive) return undefined;
      if (!(await this.breakStaleLock(key, holder.text))) return undefined;
    }
    return undefined;
  }

  /**
   * Removes a dead process's lock. It is renamed aside and checked before deletion, so a live
   * lock that replaced it in the meantime is put back rather than broken.
   */
  private async breakStaleLock(key: string, staleText: string): Promise<boolean> {
    const file = this.lockFile(key);
    const aside = `${file}.stale-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      await fs.rename(file, aside);
    } catch {
      return true; // someone else removed it; retry the create
    }
    const text = await fs.readFile(aside, "utf8").catch(() => "");
    if (text !== staleText) {
      await fs.link(aside, file).catch(() => undefined);
      await fs.unlink(aside).catch(() => undefined);
      return false;
    }
    await fs.unlink(aside).catch(() => undefined);
    return true;
  }

  /**
   * Waits for the lock of `key`. `ready()` is asked before each wait so that a result published by
   * the holder is reused instead of waiting for the lock itself.
   */
  async acquire<T>(key: string, ready: () => Promise<T | undefined>, onWait: (holder: LockHolder) => void, signal?: AbortSignal): Promise<{ lock: HeldLock } | { value: T }> {
    let delay = 25;
    let told = false;
    for (;;) {
      const lock = await this.tryLock(key);
      if (lock) return { lock };
      const value = await ready();
      if (value !== undefined) return { value };
      if (!told) {
        const holder = await this.lockHolder(key);
        if (holder) onWait(holder);
        told = true;
      }
      if (signal?.aborted) throw signal.reason;
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
  }

  /**
   * Removes leftovers of killed processes: temp directories whose pid is gone and stale locks.
   * They are never entries; run before each pipeline and by `gc`.
   */
  async cleanLeftovers(options: { dryRun?: boolean } = {}): Promise<{ tmp: string[]; locks: string[] }> {
    const removed = { tmp: [] as string[], locks: [] as string[] };
    for (const name of await fs.readdir(this.tmp).catch(() => [] as string[])) {
      const pid = Number(/^\.?(\d+)-/.exec(name)?.[1]);
      if (pidAlive(pid)) continue;
      removed.tmp.push(path.join(this.tmp, name));
      if (!options.dryRun) await fs.rm(path.join(this.tmp, name), { recursive: true, force: true }).catch(() => undefined);
    }
    for (const name of await fs.readdir(this.locks).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{64})\.lock$/.exec(name);
      if (!m) {
        // A `.stale-<pid>-` rename left behind by a killed taker.
        const pid = Number(/\.stale-(\d+)-/.exec(name)?.[1]);
        if (!pidAlive(pid)) {
          removed.locks.push(path.join(this.locks, name));
          if (!options.dryRun) await fs.rm(path.join(this.locks, name), { force: true }).catch(() => undefined);
        }
        continue;
      }
      const holder = await this.lockHolder(m[1]);
      if (!holder || holder.alive) continue;
      removed.locks.push(this.lockFile(m[1]));
      if (!options.dryRun) await this.breakStaleLock(m[1], holder.text);
    }
    return removed;
  }

  /** A memo file under meta/ (pure-function results keyed by a digest); undefined when absent or unreadable. */
  async readMeta<T>(name: string): Promise<T | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.meta, name), "utf8")) as T;
    } catch {
      return undefined;
    }
  }

  /** Writes a memo file; failures are ignored because a memo only saves time. */
  async writeMeta(name: string, value: unknown): Promise<void> {
    const file = path.join(this.meta, name);
    const temp = `${file}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      injectFault("meta", file);
      await fs.mkdir(this.meta, { recursive: true });
      await fs.writeFile(temp, JSON.stringify(value));
      await fs.rename(temp, file);
    } catch {
      await fs.rm(temp, { force: true }).catch(() => undefined);
    }
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

/** What the download entry records about the ratings file it found (it stays where it is). */
export interface SourceRecord {
  name: string;
  ratingsFile: string;
  format?: string;
  digest: string;
  source: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export const SOURCE_FILE = "source.json";

/** Stats a ratings file for the download entry (size, mtime, inode: the make-style change check). */
export async function statSource(file: string): Promise<{ size: number; mtimeMs: number; ino: number } | undefined> {
  const st = await fs.stat(file).catch(() => undefined);
  return st?.isFile() ? { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } : undefined;
}

/** Whether the ratings file a download entry points at is still the one that was hashed. */
export async function sourceUnchanged(record: SourceRecord): Promise<boolean> {
  const st = await statSource(record.ratingsFile);
  return !!st && st.size === record.size && st.mtimeMs === record.mtimeMs && st.ino === record.ino;
}

/** Writes the download entry (source.json + manifest) into a step output directory. */
export async function writeSourceRecord(outDir: string, record: SourceRecord, params: Record<string, unknown>, producedBy: { step: string; version: string; key: string }): Promise<void> {
  await buildArtifactDir(outDir, async (staging) => {
    try {
      await fs.writeFile(path.join(staging, SOURCE_FILE), JSON.stringify(record, null, 2) + "\n");
    } catch (error) {
      throw asStorageError(error, path.join(staging, SOURCE_FILE));
    }
    await writeManifest(staging, { kind: "raw-dataset", files: [SOURCE_FILE], params, metrics: { bytes: record.size }, details: record, producedBy });
  });
}
