/**
 * Who holds a lock or a lease, and whether that holder is stale. A holder names its host name,
 * pid, the process's start time (/proc/<pid>/stat field 22), boot id and pid namespace. On the
 * same host (all of those equal) it is stale as soon as the pid is gone or is another process;
 * from anywhere else it is stale once its holder has not renewed it (mtime, a heartbeat) for a
 * lease (60 s, `MS_LOCK_LEASE_MS`). The same identity marks the RUNNING parent run an ms process
 * owns (`ownerText`, `liveOwnerOf`).
 */
import { readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import { pidAlive, sha256Hex } from "@ms/contracts";
import * as v from "valibot";
import { OwnerSchema } from "./schemas.js";

/** Who holds a lock or a lease. */
export type Owner = v.InferOutput<typeof OwnerSchema>;

/** A holder as judged now. */
export interface OwnerState {
  stale: boolean;
  /** Why it is (or is not) stale, for logs. */
  reason: string;
  /** At most how long until it turns stale unless renewed; undefined for a live process on this host. */
  waitMs: number | undefined;
}

export const DEFAULT_LEASE_MS = 60_000;

/** The lease of a lock or lease file held by another host (`MS_LOCK_LEASE_MS`, default 60 s). */
export function leaseMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.MS_LOCK_LEASE_MS);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_LEASE_MS;
}

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
    if (now !== undefined && now !== o.startTime)
      return { stale: true, reason: `pid ${o.pid} is now another process (start time ${now}, not ${o.startTime})`, waitMs: 0 };
    if (now !== undefined) return { stale: false, reason: `process ${o.pid} on this host is running`, waitMs: undefined };
  }
  const where = sameHost ? `process ${String(o.pid)} (start time unknown)` : `${String(o.hostname)} pid ${String(o.pid)}`;
  if (ageMs > leaseMs)
    return { stale: true, reason: `${where} has not renewed it for ${Math.round(ageMs)} ms (lease ${leaseMs} ms)`, waitMs: 0 };
  return {
    stale: false,
    reason: `${where} renewed it ${Math.round(ageMs)} ms ago (lease ${leaseMs} ms)`,
    waitMs: Math.max(0, Math.ceil(leaseMs - ageMs)),
  };
}

/** This process as text for a tag or a file: what `liveOwnerOf` reads back. */
export function ownerText(): string {
  return JSON.stringify(selfOwner());
}

/**
 * Whether `text` (an `ownerText`) names another process on this host that is still running: its
 * reason when so, undefined otherwise (this process, a process that is gone, another host, which
 * cannot be checked from here, or text that names no owner).
 */
export function liveOwnerOf(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let owner: Owner;
  try {
    owner = v.parse(OwnerSchema, JSON.parse(text));
  } catch {
    return undefined;
  }
  const me = selfOwner();
  if (owner.pid === me.pid && hostTag(owner) === hostTag(me) && owner.startTime === me.startTime) return undefined;
  if (hostTag(owner) !== hostTag(me)) return undefined;
  const state = judgeOwner(owner, 0, Number.POSITIVE_INFINITY);
  return state.stale ? undefined : state.reason;
}
