/**
 * The step cache as the driver uses it: one get-or-compute per step inside a session that protects
 * what a run uses from gc (local entry, then the shared remote cache when there is one, then
 * compute), and `ms cache ls | verify | gc | push | pull`. Entries are removed only under their
 * key's lock and never while a live run's lease names them; leftovers of killed processes (temp
 * directories, stale locks and leases) are not entries and are only ever cleaned.
 */
import { cleanPartialDownloads } from "@ms/etl";
import { BadParameterError, CorruptArtifactError, InterruptedError, MissingArtifactError, type Manifest } from "@ms/contracts";
import type { RemoteCache, RemoteTransfer } from "./remote-cache.js";
import { CacheStore, type EntryInfo, type Lease, type LockInfo } from "./storage.js";

/** What the caller records in entry.json besides the key, the step, the digest and the timestamps. */
export type EntryDescription = Omit<EntryInfo, "key" | "step" | "outputDigest" | "createdAt" | "lastUsedAt" | "identities">;

/** A usable entry. */
export interface CacheHit {
  dir: string;
  manifest: Manifest;
  entry: EntryInfo;
}

export interface GetOrComputeRequest {
  key: string;
  step: string;
  info: EntryDescription;
  /** Skip hits: recompute, and replace the entry. */
  force?: boolean;
  /** Writes the step's artifact directory (with manifest.json) at `dir`, which does not exist yet. */
  compute(dir: string): Promise<void>;
  /** An extra check of a hit (e.g. an external source file unchanged); false recomputes. */
  stillValid?(hit: CacheHit): Promise<boolean>;
  signal?: AbortSignal;
  /** Another process holds the key's lock: who, and at most how long it will be waited for (undefined: until that local process ends). */
  onWait?(holder: LockInfo, waitMs: number | undefined): void;
  /** The entry is damaged (reported once per process and key); it is recomputed, never served. */
  onDamaged?(key: string, problems: string[]): void;
  /** False: the result is never pulled from or pushed to the remote cache (a step's `shareable`). */
  shareable?: boolean;
  /** The remote entry did not verify (reported once per process and key); it is a miss, recomputed and pushed again. */
  onRemoteBad?(key: string, problems: string[]): void;
}

/** Where a result came from: this cache, the shared remote cache, or the step itself. */
export type CacheSource = "local" | "remote" | "computed";

export interface CacheOutcome extends CacheHit {
  cached: boolean;
  source: CacheSource;
  /** What moved to or from the remote cache for this result (a remote hit, or the push of a computed one). */
  transfer?: RemoteTransfer;
}

/** Keys already reported damaged in this process (waiters re-check while another run recomputes). */
const reportedDamaged = new Set<string>();
/** Remote entries already reported bad in this process. */
const reportedRemoteBad = new Set<string>();

/**
 * One run's use of the cache. Every key it touches is written to its lease before the entry is
 * checked and stays protected from gc until `close()`.
 */
export class CacheSession {
  constructor(
    readonly store: CacheStore,
    private readonly lease: Lease,
    /** The shared remote cache, if any (consulted after the local entry, before computing). */
    readonly remote?: RemoteCache,
  ) {}

  /**
   * The entry of `key`, verified, or computed now: check, lock, re-check, then (a shareable step
   * with a remote cache) pull the remote entry, verified and published like a computed one;
   * else compute into tmp/, verify and publish by rename, push (write modes); release.
   */
  async getOrCompute(req: GetOrComputeRequest): Promise<CacheOutcome> {
    const { store } = this;
    const { key, force = false, signal } = req;
    const interrupted = () => (signal?.reason instanceof Error ? signal.reason : new InterruptedError("interrupted"));
    if (signal?.aborted) throw interrupted();
    await store.ensureLayout();
    await this.lease.protect(key);
    if (!force) {
      const hit = await this.usable(req);
      if (hit) return this.served(hit);
    }
    const got = await store.acquire(key, async () => (force ? undefined : this.usable(req)), (holder, waitMs) => req.onWait?.(holder, waitMs), signal);
    if ("value" in got) return this.served(got.value);
    try {
      if (!force) {
        const hit = await this.usable(req);
        if (hit) return this.served(hit);
      }
      const shared = this.remote !== undefined && req.shareable !== false;
      if (!force && shared) {
        const pulled = await this.pull(key, req.step, signal, (problems) => this.reportRemoteBad(req, problems));
        if (pulled) {
          const hit = await this.usable(req);
          if (hit) return { ...(await this.served(hit)), source: "remote", transfer: pulled.transfer };
          // Published but not usable here (the step's own check): recomputed below, and pushed again.
          this.reportRemoteBad(req, [`${req.step}: the pulled entry fails the step's check on this machine`]);
        }
      }
      const temp = store.tempPath(req.step);
      let outcome: CacheOutcome;
      try {
        await req.compute(temp.dir);
        if (signal?.aborted) throw interrupted();
        if (!force && !(await got.lock.stillHeld())) {
          // Judged stale and taken over (a stalled process): keep what the other run published.
          const hit = await this.usable(req);
          if (hit) return this.served(hit);
        }
        const now = new Date().toISOString();
        const published = await store.publishEntry(temp.dir, { ...req.info, key, step: req.step, outputDigest: "", createdAt: now, lastUsedAt: now });
        outcome = { cached: false, source: "computed", ...published };
      } finally {
        await temp.discard();
      }
      if (shared && this.remote?.canWrite) {
        const transfer = await this.remote.pushEntry(outcome.dir, outcome.entry, outcome.manifest, signal);
        if (transfer) outcome.transfer = transfer;
      }
      return outcome;
    } finally {
      await got.lock.release();
    }
  }

  private reportRemoteBad(req: GetOrComputeRequest, problems: string[]): void {
    const id = `${this.remote?.url ?? ""}\0${req.key}`;
    if (reportedRemoteBad.has(id)) return;
    reportedRemoteBad.add(id);
    req.onRemoteBad?.(req.key, problems);
  }

  /**
   * Downloads the remote entry of `key` into a staging directory (every blob checked against its
   * sha256), then publishes it by the path of a computed result (every file re-hashed against the
   * manifest, entry.json written, one rename). The caller holds the key's lock. Undefined: not
   * there, bad (told through `onBad`) or the remote unavailable.
   */
  private async pull(key: string, step: string | undefined, signal: AbortSignal | undefined, onBad: (problems: string[]) => void): Promise<{ dir: string; step: string; transfer: RemoteTransfer } | undefined> {
    const remote = this.remote;
    if (!remote?.canRead) return undefined;
    const started = performance.now();
    const temp = this.store.tempPath(step ?? "pull");
    try {
      const got = await remote.fetchEntry(key, temp.dir, signal);
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError("interrupted");
      if (got.status === "bad") onBad(got.problems);
      if (got.status !== "hit") return undefined;
      if (step !== undefined && got.record.step !== step) {
        onBad([`the record names step ${got.record.step}, not ${step}`]);
        return undefined;
      }
      const now = new Date().toISOString();
      let published;
      try {
        published = await this.store.publishEntry(temp.dir, { ...got.record.entry, key, step: got.record.step, outputDigest: "", createdAt: got.record.entry.createdAt ?? now, lastUsedAt: now });
      } catch (error) {
        if (!(error instanceof CorruptArtifactError)) throw error;
        onBad([(error as Error).message]);
        return undefined;
      }
      if (got.record.entry.outputDigest && published.entry.outputDigest !== got.record.entry.outputDigest) {
        // Self-consistent but not the output the record was pushed for: never passed downstream.
        await this.store.removeEntry(key);
        onBad([`the files' digest ${published.entry.outputDigest} is not the record's ${got.record.entry.outputDigest}`]);
        return undefined;
      }
      return { dir: published.dir, step: got.record.step, transfer: { direction: "down", bytes: got.bytes, blobs: got.record.files.length, seconds: (performance.now() - started) / 1000 } };
    } finally {
      await temp.discard();
    }
  }

  /**
   * `ms cache pull`: the remote entry of `key` into this cache unless a usable local one is there
   * (under the key's lock). MissingArtifactError when the remote has none (or a bad one).
   */
  async pullEntry(key: string, signal?: AbortSignal): Promise<{ key: string; step: string; source: "local" | "remote"; transfer?: RemoteTransfer }> {
    const { store } = this;
    await store.ensureLayout();
    await this.lease.protect(key);
    const local = await store.checkEntry(key);
    if (local.status === "hit") return { key, step: local.entry.step, source: "local" };
    const got = await store.acquire(key, async () => {
      const c = await store.checkEntry(key);
      return c.status === "hit" ? c : undefined;
    }, () => undefined, signal);
    if ("value" in got) return { key, step: got.value.entry.step, source: "local" };
    try {
      let problems: string[] = [];
      const pulled = await this.pull(key, undefined, signal, (p) => (problems = p));
      if (!pulled) {
        const why = this.remote?.unavailable ?? (problems.length ? `its remote entry is bad: ${problems.join("; ")}` : "the remote cache has no such entry");
        throw new MissingArtifactError(`cache pull ${key}: ${why}`);
      }
      return { key, step: pulled.step, source: "remote", transfer: pulled.transfer };
    } finally {
      await got.lock.release();
    }
  }

  /** `ms cache push`: a verified local entry to the remote cache. */
  async pushEntry(key: string, signal?: AbortSignal): Promise<RemoteTransfer | undefined> {
    const check = await this.store.checkEntry(key);
    if (check.status !== "hit") throw new MissingArtifactError(`cache push ${key}: ${check.status === "damaged" ? `the local entry is damaged: ${check.problems.join("; ")}` : "no usable local entry"}`);
    return this.remote?.pushEntry(check.dir, check.entry, check.manifest, signal);
  }

  private async usable(req: GetOrComputeRequest): Promise<CacheHit | undefined> {
    const check = await this.store.checkEntry(req.key);
    if (check.status === "damaged") {
      const id = `${this.store.root}\0${req.key}`;
      if (!reportedDamaged.has(id)) {
        reportedDamaged.add(id);
        req.onDamaged?.(req.key, check.problems);
      }
      return undefined;
    }
    if (check.status !== "hit") return undefined;
    if (req.stillValid && !(await req.stillValid(check))) return undefined;
    return check;
  }

  private async served(hit: CacheHit): Promise<CacheOutcome> {
    const entry = { ...hit.entry, lastUsedAt: new Date().toISOString() };
    await this.store.touch(entry);
    return { cached: true, source: "local", dir: hit.dir, manifest: hit.manifest, entry };
  }

  /** Ends the protection of every key this session used (its lease is deleted). */
  async close(): Promise<void> {
    await this.lease.close();
  }
}

/** Opens a session on a cache (nothing is written until its first getOrCompute); close it when the run ends. */
export function openSession(cache: string | CacheStore, options: { remote?: RemoteCache } = {}): CacheSession {
  const store = typeof cache === "string" ? new CacheStore(cache) : cache;
  return new CacheSession(store, store.newLease(), options.remote);
}

export interface CacheEntrySummary {
  key: string;
  step: string;
  params: Record<string, unknown>;
  bytes: number;
  createdAt: string | null;
  lastUsedAt: string | null;
  producedByRun: string | null;
  outputDigest: string | null;
}

/** Every entry, newest use first. Damaged entries are listed with what could be read. */
export async function listCache(cacheDir: string, options: { step?: string } = {}): Promise<CacheEntrySummary[]> {
  const store = new CacheStore(cacheDir);
  await store.assertUsable();
  const out: CacheEntrySummary[] = [];
  for (const key of await store.listKeys()) {
    const info = await store.readEntryInfo(key);
    if (options.step && info?.step !== options.step) continue;
    out.push({
      key,
      step: info?.step ?? "?",
      params: info?.params ?? {},
      bytes: await store.entrySize(key),
      createdAt: info?.createdAt ?? null,
      lastUsedAt: info?.lastUsedAt ?? null,
      producedByRun: info?.producedByRun ?? null,
      outputDigest: info?.outputDigest ?? null,
    });
  }
  return out.sort((a, b) => (b.lastUsedAt ?? "").localeCompare(a.lastUsedAt ?? ""));
}

export interface VerifyReport {
  ok: boolean;
  checked: number;
  damaged: { key: string; step: string; problems: string[]; removed: boolean }[];
}

/**
 * Re-hashes every entry, with the checks of a hit (digest against the file list, paths inside the
 * entry). With `remove`, damaged entries are deleted (under their lock, unless a live run uses them).
 */
export async function verifyCache(cacheDir: string, options: { remove?: boolean } = {}): Promise<VerifyReport> {
  const store = new CacheStore(cacheDir);
  await store.assertUsable();
  const report: VerifyReport = { ok: true, checked: 0, damaged: [] };
  for (const key of await store.listKeys()) {
    report.checked++;
    const result = await store.deepVerify(key);
    if (result.ok) continue;
    report.ok = false;
    const info = await store.readEntryInfo(key);
    let removed = false;
    if (options.remove) removed = (await store.removeUnused(key)) === "removed";
    report.damaged.push({ key, step: info?.step ?? "?", problems: result.problems, removed });
  }
  return report;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `90m`, `45s`, `2w` or a number of days. */
export function parseAge(raw: string, flag = "--older-than"): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(raw.trim());
  if (!m) throw new BadParameterError(flag, `"${raw}" is not an age such as 30d, 12h, 90m or 0`);
  return Number(m[1]) * UNITS[m[2] || "d"];
}

export interface GcOptions {
  /** Remove entries not used for this many milliseconds. */
  olderThanMs?: number;
  /** Keep at most this many entries per step (most recently used first). */
  keepPerStep?: number;
  dryRun?: boolean;
}

export interface GcReport {
  dryRun: boolean;
  removed: { key: string; step: string; bytes: number; reason: string }[];
  /** Entries being computed or used by a live run (its lock or lease), left alone. */
  skippedLocked: string[];
  /** Killed runs' temp directories, stale locks and leases, old memo files, and partial downloads of dead processes. */
  leftovers: { tmp: string[]; locks: string[]; meta: string[]; downloads: string[] };
  freedBytes: number;
}

/**
 * Removes entries by age and by count per step, except those a live run is computing or using,
 * plus leftovers of killed runs (temp directories, stale locks and leases of any host).
 */
export async function gcCache(cacheDir: string, options: GcOptions = {}): Promise<GcReport> {
  const store = new CacheStore(cacheDir);
  const dryRun = options.dryRun === true;
  const report: GcReport = { dryRun, removed: [], skippedLocked: [], leftovers: { tmp: [], locks: [], meta: [], downloads: [] }, freedBytes: 0 };
  await store.assertUsable();
  if (!(await store.exists())) return report;
  const entries = await listCache(cacheDir);
  const victims = new Map<string, string>();
  const now = Date.now();
  if (options.olderThanMs !== undefined) {
    for (const e of entries) {
      const used = Date.parse(e.lastUsedAt ?? e.createdAt ?? "") || 0;
      if (now - used >= options.olderThanMs) victims.set(e.key, "age");
    }
  }
  if (options.keepPerStep !== undefined) {
    const seen = new Map<string, number>();
    for (const e of entries) {
      const n = (seen.get(e.step) ?? 0) + 1;
      seen.set(e.step, n);
      if (n > options.keepPerStep && !victims.has(e.key)) victims.set(e.key, "count");
    }
  }
  const inUse = dryRun ? (await store.liveLeases()).keys : new Set<string>();
  for (const e of entries) {
    const reason = victims.get(e.key);
    if (!reason) continue;
    if (dryRun && (inUse.has(e.key) || (await store.lockHolder(e.key))?.alive)) {
      report.skippedLocked.push(e.key);
      continue;
    }
    if (!dryRun && (await store.removeUnused(e.key)) !== "removed") {
      report.skippedLocked.push(e.key);
      continue;
    }
    report.removed.push({ key: e.key, step: e.step, bytes: e.bytes, reason });
    report.freedBytes += e.bytes;
  }
  const left = await store.cleanLeftovers({ dryRun });
  report.leftovers.tmp = left.tmp;
  report.leftovers.locks = left.locks;
  if (options.olderThanMs !== undefined) report.leftovers.meta = await store.staleMeta(options.olderThanMs, dryRun);
  report.leftovers.downloads = await cleanPartialDownloads(store.root, { dryRun });
  return report;
}

export type { EntryInfo };
