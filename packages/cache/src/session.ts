/**
 * A run's use of the step cache: one get-or-compute per step inside a session that protects what
 * the run uses from gc (the local entry, then the remote store when there is one, then compute),
 * and the pull or push of one entry. Every key a session touches is in its lease until it closes.
 */
import { CorruptArtifactError, InterruptedError, MissingArtifactError, type Manifest } from "@ms/contracts";
import { keyAgreementProblems } from "./key.js";
import type { Lease } from "./leases.js";
import type { LockInfo } from "./locks.js";
import type { RemoteStore, RemoteTransfer } from "./remote.js";
import type { EntryInfo } from "./schemas.js";
import { CacheStore } from "./store.js";

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
    readonly remote?: RemoteStore,
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
    const got = await store.acquire(
      key,
      async () => (force ? undefined : this.usable(req)),
      (holder, waitMs) => req.onWait?.(holder, waitMs),
      signal,
    );
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
        const published = await store.publishEntry(temp.dir, {
          ...req.info,
          key,
          step: req.step,
          outputDigest: "",
          createdAt: now,
          lastUsedAt: now,
        });
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
   * manifest, entry.json written, one rename); a published manifest that disagrees with the key is
   * removed again. The caller holds the key's lock. Undefined: not
   * there, bad (told through `onBad`) or the remote unavailable.
   */
  private async pull(
    key: string,
    step: string | undefined,
    signal: AbortSignal | undefined,
    onBad: (problems: string[]) => void,
  ): Promise<{ dir: string; step: string; transfer: RemoteTransfer } | undefined> {
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
        published = await this.store.publishEntry(temp.dir, {
          ...got.record.entry,
          key,
          step: got.record.step,
          outputDigest: "",
          createdAt: got.record.entry.createdAt || now,
          lastUsedAt: now,
        });
      } catch (error) {
        if (!(error instanceof CorruptArtifactError)) throw error;
        onBad([(error as Error).message]);
        return undefined;
      }
      // Self-consistent but not the output the record was pushed for, or a manifest.json that is
      // not the result of this key: never passed downstream.
      const wrong =
        got.record.entry.outputDigest && published.entry.outputDigest !== got.record.entry.outputDigest
          ? [`the files' digest ${published.entry.outputDigest} is not the record's ${got.record.entry.outputDigest}`]
          : keyAgreementProblems(key, got.record.step, published.entry, published.manifest);
      if (wrong.length) {
        await this.store.removeEntry(key);
        onBad(wrong);
        return undefined;
      }
      return {
        dir: published.dir,
        step: got.record.step,
        transfer: { direction: "down", bytes: got.bytes, blobs: got.record.files.length, seconds: (performance.now() - started) / 1000 },
      };
    } finally {
      await temp.discard();
    }
  }

  /**
   * `ms cache pull`: the remote entry of `key` into this cache unless a usable local one is there
   * (under the key's lock). MissingArtifactError when the remote has none (or a bad one).
   */
  async pullEntry(
    key: string,
    signal?: AbortSignal,
  ): Promise<{ key: string; step: string; source: "local" | "remote"; transfer?: RemoteTransfer }> {
    const { store } = this;
    await store.ensureLayout();
    await this.lease.protect(key);
    const local = await store.checkEntry(key);
    if (local.status === "hit") return { key, step: local.entry.step, source: "local" };
    const got = await store.acquire(
      key,
      async () => {
        const c = await store.checkEntry(key);
        return c.status === "hit" ? c : undefined;
      },
      () => undefined,
      signal,
    );
    if ("value" in got) return { key, step: got.value.entry.step, source: "local" };
    try {
      let problems: string[] = [];
      const pulled = await this.pull(key, undefined, signal, (p) => (problems = p));
      if (!pulled) {
        const why =
          this.remote?.unavailable ??
          (problems.length ? `its remote entry is bad: ${problems.join("; ")}` : "the remote cache has no such entry");
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
    if (check.status !== "hit")
      throw new MissingArtifactError(
        `cache push ${key}: ${check.status === "damaged" ? `the local entry is damaged: ${check.problems.join("; ")}` : "no usable local entry"}`,
      );
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
export function openSession(cache: string | CacheStore, options: { remote?: RemoteStore } = {}): CacheSession {
  const store = typeof cache === "string" ? new CacheStore(cache) : cache;
  return new CacheSession(store, store.newLease(), options.remote);
}
