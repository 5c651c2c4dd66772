/**
 * `ms cache ls | verify | gc`: reading and pruning the step cache. Entries are removed only under
 * their key's lock, so a run computing or publishing a key is never raced; leftovers of killed
 * processes (temp directories, stale locks) are not entries and are only ever cleaned.
 */
import { BadParameterError } from "@ms/contracts";
import { CacheStore, type EntryInfo } from "./storage.js";

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

/** Re-hashes every entry. With `remove`, damaged entries are deleted (under their lock). */
export async function verifyCache(cacheDir: string, options: { remove?: boolean } = {}): Promise<VerifyReport> {
  const store = new CacheStore(cacheDir);
  const report: VerifyReport = { ok: true, checked: 0, damaged: [] };
  for (const key of await store.listKeys()) {
    report.checked++;
    const result = await store.deepVerify(key);
    if (result.ok) continue;
    report.ok = false;
    const info = await store.readEntryInfo(key);
    let removed = false;
    if (options.remove) removed = await removeLocked(store, key);
    report.damaged.push({ key, step: info?.step ?? "?", problems: result.problems, removed });
  }
  return report;
}

async function removeLocked(store: CacheStore, key: string): Promise<boolean> {
  const lock = await store.tryLock(key);
  if (!lock) return false;
  try {
    await store.removeEntry(key);
    return true;
  } finally {
    await lock.release();
  }
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
  skippedLocked: string[];
  leftovers: { tmp: string[]; locks: string[]; meta: string[] };
  freedBytes: number;
}

/** Removes entries by age and by count per step, plus leftovers of killed runs. */
export async function gcCache(cacheDir: string, options: GcOptions = {}): Promise<GcReport> {
  const store = new CacheStore(cacheDir);
  const dryRun = options.dryRun === true;
  const report: GcReport = { dryRun, removed: [], skippedLocked: [], leftovers: { tmp: [], locks: [], meta: [] }, freedBytes: 0 };
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
  for (const e of entries) {
    const reason = victims.get(e.key);
    if (!reason) continue;
    if (!dryRun && !(await removeLocked(store, e.key))) {
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
  return report;
}

export type { EntryInfo };
