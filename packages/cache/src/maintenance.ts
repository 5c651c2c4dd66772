/**
 * Looking after a cache: `ls` (every entry), `verify` (re-hash every entry) and `gc` (by age and
 * count per step, plus leftovers of killed processes and what steps' cleaners find). Entries are
 * removed only under their key's lock and never while a live run's lease names them; leftovers
 * (temp directories, stale locks and leases) are not entries and are only ever cleaned.
 */
import { BadParameterError, type StepCleaner } from "@ms/contracts";
import { CacheStore } from "./store.js";

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
  /** What steps keep in the cache beside entries, cleaned of killed runs' leftovers (e.g. partial downloads). */
  cleaners?: readonly StepCleaner[];
  /** Remove entries not used for this many milliseconds. */
  olderThanMs?: number;
  /** Keep at most this many entries per step (most recently used first). */
  keepPerStep?: number;
  dryRun?: boolean;
}

export type GcLeftovers = { tmp: string[]; locks: string[]; meta: string[] } & Record<string, string[]>;

export interface GcReport {
  dryRun: boolean;
  removed: { key: string; step: string; bytes: number; reason: string }[];
  /** Entries being computed or used by a live run (its lock or lease), left alone. */
  skippedLocked: string[];
  /** Killed runs' temp directories, stale locks and leases, old memo files, and what each cleaner (by name) removed. */
  leftovers: GcLeftovers;
  freedBytes: number;
}

/**
 * Removes entries by age and by count per step, except those a live run is computing or using,
 * plus leftovers of killed runs (temp directories, stale locks and leases of any host).
 */
export async function gcCache(cacheDir: string, options: GcOptions = {}): Promise<GcReport> {
  const store = new CacheStore(cacheDir);
  const dryRun = options.dryRun === true;
  const report: GcReport = { dryRun, removed: [], skippedLocked: [], leftovers: { tmp: [], locks: [], meta: [] }, freedBytes: 0 };
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
  for (const cleaner of options.cleaners ?? []) report.leftovers[cleaner.name] = await cleaner.clean(store.root, { dryRun });
  return report;
}
