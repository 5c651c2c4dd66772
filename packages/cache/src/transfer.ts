/**
 * `ms cache push | pull` as functions: choose the entries (every local one, or keys and unique key
 * prefixes), move each through a session (so gc leaves them alone meanwhile), and report what
 * moved. The caller wires flags, signals and printing.
 */
import { BadParameterError } from "@ms/contracts";
import type { RemoteStore } from "./remote.js";
import { openSession } from "./session.js";
import { CacheStore } from "./store.js";

const KEY_PREFIX_RE = /^[0-9a-f]{4,64}$/;

/** A full key, or the one key of `known` that starts with `raw`. */
export function resolveKey(raw: string, known: readonly string[], where: string): string {
  if (!KEY_PREFIX_RE.test(raw)) throw new BadParameterError("KEY", `"${raw}" is not a cache key (hex, at least 4 characters)`);
  if (raw.length === 64) return raw;
  const hits = known.filter((k) => k.startsWith(raw));
  if (hits.length === 1) return hits[0];
  throw new BadParameterError(
    "KEY",
    hits.length
      ? `"${raw}" names ${hits.length} entries of the ${where}; give more of the key`
      : `no entry of the ${where} has a key starting with "${raw}"`,
  );
}

export interface PushEntriesOptions {
  cacheDir: string;
  remote: RemoteStore;
  /** Keys or unique prefixes; empty: every local entry. */
  keys?: readonly string[];
  /** Steps whose entries are never shared (a step's `shareable: false`), with why. */
  unshared?: ReadonlyMap<string, string>;
  signal?: AbortSignal;
  /** Hears each entry once it is pushed. */
  onPushed?(pushed: PushedEntry): void;
}

export interface PushedEntry {
  key: string;
  step: string;
  bytes: number;
  blobs: number;
  seconds: number;
}

export interface PushReport {
  pushed: PushedEntry[];
  skipped: { key: string; step: string; reason: string }[];
  bytes: number;
}

/** Verified local entries (all, or `keys`) to the remote store; entries of unshared steps are skipped. */
export async function pushEntries(o: PushEntriesOptions): Promise<PushReport> {
  const store = new CacheStore(o.cacheDir);
  await store.assertUsable();
  const all = await store.listKeys();
  const chosen = o.keys?.length ? o.keys.map((k) => resolveKey(k, all, "local cache")) : all;
  const session = openSession(store, { remote: o.remote });
  const report: PushReport = { pushed: [], skipped: [], bytes: 0 };
  try {
    for (const key of chosen) {
      const step = (await store.readEntryInfo(key))?.step ?? "?";
      const reason = o.unshared?.get(step);
      if (reason !== undefined) {
        report.skipped.push({ key, step, reason });
        continue;
      }
      const t = await session.pushEntry(key, o.signal);
      if (!t) continue;
      const pushed = { key, step, bytes: t.bytes, blobs: t.blobs, seconds: t.seconds };
      report.pushed.push(pushed);
      report.bytes += t.bytes;
      o.onPushed?.(pushed);
    }
  } finally {
    await session.close();
  }
  return report;
}

export interface PulledEntry {
  key: string;
  step: string;
  /** local: a usable entry was already here. */
  source: "local" | "remote";
  bytes: number;
}

/** Remote entries (keys or unique prefixes) into the local cache, verified as a remote hit is. */
export async function pullEntries(o: {
  cacheDir: string;
  remote: RemoteStore;
  keys: readonly string[];
  signal?: AbortSignal;
}): Promise<PulledEntry[]> {
  if (!o.keys.length) throw new BadParameterError("KEY", "ms cache pull needs at least one key (see 'ms cache ls --remote')");
  const known = o.keys.every((k) => /^[0-9a-f]{64}$/.test(k)) ? [...o.keys] : (await o.remote.listEntries(o.signal)).map((e) => e.key);
  const chosen = o.keys.map((k) => resolveKey(k, known, "remote cache"));
  const store = new CacheStore(o.cacheDir);
  await store.assertUsable();
  const session = openSession(store, { remote: o.remote });
  const pulled: PulledEntry[] = [];
  try {
    for (const key of chosen) {
      const r = await session.pullEntry(key, o.signal);
      pulled.push({ key, step: r.step, source: r.source, bytes: r.transfer?.bytes ?? 0 });
    }
  } finally {
    await session.close();
  }
  return pulled;
}
