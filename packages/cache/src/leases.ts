/**
 * The leases under leases/: one file per run (`<pid>-<n>.lease`) naming its holder and the keys
 * the run uses, written (atomically) before an entry is checked, renewed by a heartbeat, removed
 * when the session closes. `gc` skips every key of a live lease.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { parseJsonText, writeFileAtomic } from "@ms/contracts";
import { injectFault, type CacheFault } from "./faults.js";
import { onExit, renewEvery, unlinkQuietly } from "./hooks.js";
import { hostTag, judgeOwner, type Owner } from "./owner.js";
import { LeaseFileSchema } from "./schemas.js";

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
    private readonly fault?: CacheFault,
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
      injectFault(this.fault, "lock", this.file);
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, JSON.stringify({ ...this.owner, keys: [...this.keys] }));
      this.writable = true;
    } catch {
      this.writable = false;
      return false;
    }
    this.forget ??= onExit(() => unlinkQuietly(this.file));
    this.stopBeat ??= renewEvery(this.leaseMs / 4, this.file);
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

export interface LiveLeases {
  /** Keys some live run uses. */
  keys: Set<string>;
  /** `<pid>@<host tag>` of every live run. */
  owners: Set<string>;
  /** Lease files of dead runs (and old temp files of lease writes). */
  stale: string[];
}

/** A lease file's holder and keys; an unreadable or malformed one has no live holder and is judged by age. */
async function readLease(file: string): Promise<{ owner: Partial<Owner>; keys: string[]; mtimeMs: number } | undefined> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, mtimeMs] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file).then((s) => s.mtimeMs)]);
  } catch {
    return undefined; // closed meanwhile
  }
  try {
    const { keys, ...owner } = parseJsonText(text, LeaseFileSchema, file);
    return { owner, keys, mtimeMs };
  } catch {
    return { owner: { pid: 0, hostname: "?" }, keys: [], mtimeMs };
  }
}

/** Every lease file under `dir`, judged: the keys of live ones, and the stale files (with `clean`, removed). */
export async function liveLeases(dir: string, leaseMs: number, options: { clean?: boolean } = {}): Promise<LiveLeases> {
  const out: LiveLeases = { keys: new Set(), owners: new Set(), stale: [] };
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const full = path.join(dir, name);
    if (name.startsWith(".")) {
      // The temp file of a lease write (it lives for a moment) left by a kill.
      const st = await fs.stat(full).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > leaseMs) out.stale.push(full);
      continue;
    }
    const lease = await readLease(full);
    if (!lease) continue;
    if (judgeOwner(lease.owner, Date.now() - lease.mtimeMs, leaseMs).stale) {
      out.stale.push(full);
      continue;
    }
    out.owners.add(
      `${String(lease.owner.pid)}@${hostTag({ hostname: lease.owner.hostname ?? "?", bootId: lease.owner.bootId, pidNs: lease.owner.pidNs })}`,
    );
    for (const k of lease.keys) out.keys.add(k);
  }
  if (options.clean) for (const f of out.stale) await fs.rm(f, { force: true }).catch(() => undefined);
  return out;
}
