/**
 * The cache storage adapter on its own: O_EXCL locks and the takeover of a dead process's lock,
 * the cheap hit check, publishing over a damaged entry, leftovers, and injected write faults.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { readdir, utimes } from "node:fs/promises";
import { pidAlive, writeManifest, StorageError } from "@ms/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listCache } from "./maintenance.js";
import { processStartTime, selfOwner } from "./owner.js";
import type { EntryInfo } from "./schemas.js";
import { CacheStore } from "./store.js";

/** The names in a directory, sorted; none when it does not exist. */
const listDir = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).sort();

const KEY = "a".repeat(64);
let root: string;
let store: CacheStore;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-storage-"));
  store = new CacheStore(path.join(root, "cache"));
  await store.ensureLayout();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

function info(key = KEY): EntryInfo {
  const now = new Date().toISOString();
  return {
    key,
    step: "etl",
    version: "0.1.0",
    codeDigest: "sha256:x",
    params: { a: 1 },
    inputs: {},
    outputDigest: "sha256:y",
    createdAt: now,
    lastUsedAt: now,
    producedByRun: "run1",
  };
}

async function buildEntry(dir: string, content = "hello"): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "data.bin"), content);
  await writeManifest(dir, {
    kind: "ratings",
    files: ["data.bin"],
    params: {},
    metrics: {},
    details: {},
    producedBy: { step: "etl", version: "0" },
  });
}

describe("locks", () => {
  it("one holder at a time; released locks can be taken again", async () => {
    const a = await store.tryLock(KEY);
    expect(a).toBeDefined();
    expect(await store.tryLock(KEY)).toBeUndefined();
    const holder = JSON.parse(await readFile(store.lockFile(KEY), "utf8"));
    expect(holder).toMatchObject({ pid: process.pid, hostname: os.hostname() });
    await a!.release();
    const b = await store.tryLock(KEY);
    expect(b).toBeDefined();
    await b!.release();
  });

  it("takes over the lock of a dead process, never a live one", async () => {
    const pid = deadPid();
    expect(pidAlive(pid)).toBe(false);
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid, hostname: os.hostname(), startedAt: "x" }));
    const lock = await store.tryLock(KEY);
    expect(lock).toBeDefined();
    expect(JSON.parse(await readFile(store.lockFile(KEY), "utf8")).pid).toBe(process.pid);
    await lock!.release();
    // The parent of this test process is alive: its lock stays.
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid: process.ppid, hostname: os.hostname(), startedAt: "x" }));
    expect(await store.tryLock(KEY)).toBeUndefined();
  });

  it("acquire() returns the published value instead of waiting for a live holder", async () => {
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid: process.ppid, hostname: os.hostname(), startedAt: "x" }));
    let asked = 0;
    const waits: number[] = [];
    const got = await store.acquire(
      KEY,
      async () => (++asked >= 3 ? "published" : undefined),
      (h) => waits.push(h.pid),
    );
    expect(got).toEqual({ value: "published" });
    expect(waits).toEqual([process.ppid]);
  });
});

describe("stale locks", () => {
  afterEach(() => {
    delete process.env.MS_LOCK_LEASE_MS;
  });

  it("another host's lock is live within its lease and stale after it", async () => {
    process.env.MS_LOCK_LEASE_MS = "5000";
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid: 99, hostname: "other-container", startedAt: "x" }));
    expect(await store.tryLock(KEY)).toBeUndefined();
    const old = new Date(Date.now() - 10_000);
    await utimes(store.lockFile(KEY), old, old);
    const lock = await store.tryLock(KEY);
    expect(lock).toBeDefined();
    await lock!.release();
  });

  it("a lock whose pid now belongs to another process (start time differs) is stale", async () => {
    const real = processStartTime(1);
    expect(real).toBeDefined();
    await writeFile(store.lockFile(KEY), JSON.stringify({ ...selfOwner(), pid: 1, startTime: String(Number(real) + 1) }));
    const lock = await store.tryLock(KEY);
    expect(lock).toBeDefined();
    await lock!.release();
    // The same pid with its real start time is a live holder.
    await writeFile(store.lockFile(KEY), JSON.stringify({ ...selfOwner(), pid: 1, startTime: real }));
    expect(await store.tryLock(KEY)).toBeUndefined();
  });
});

describe("entries", () => {
  it("a hit needs the manifest, entry.json and every file with its recorded size and sha256", async () => {
    expect((await store.checkEntry(KEY)).status).toBe("missing");
    const temp = store.tempPath("etl");
    await buildEntry(temp.dir);
    await store.publish(temp.dir, info());
    expect((await store.checkEntry(KEY)).status).toBe("hit");
    await writeFile(path.join(store.entryDir(KEY), "data.bin"), "hell");
    const damaged = await store.checkEntry(KEY);
    expect(damaged.status).toBe("damaged");
    // Same size, other bytes: a hit re-hashes a file whose identity changed.
    await writeFile(path.join(store.entryDir(KEY), "data.bin"), "jello");
    expect((await store.checkEntry(KEY)).status).toBe("damaged");
    expect((await store.deepVerify(KEY)).ok).toBe(false);
  });

  it("deepVerify reports an edited digest and a path out of the entry, without reading outside it", async () => {
    const temp = store.tempPath("etl");
    await buildEntry(temp.dir);
    await store.publish(temp.dir, info());
    const manifestFile = path.join(store.entryDir(KEY), "manifest.json");
    const good = await readFile(manifestFile, "utf8");
    await writeFile(manifestFile, good.replace(/"digest": "sha256:[0-9a-f]+"/, `"digest": "sha256:${"0".repeat(64)}"`));
    expect((await store.deepVerify(KEY)).problems.join()).toMatch(/does not match its file list/);
    expect((await store.checkEntry(KEY)).status).toBe("damaged");
    const passwd = await readFile("/etc/passwd");
    const m = JSON.parse(good);
    m.files[0].path = "../../../../etc/passwd";
    m.files[0].bytes = passwd.length;
    await writeFile(manifestFile, JSON.stringify(m));
    expect((await store.deepVerify(KEY)).problems.join()).toMatch(/leaves the artifact directory/);
  });

  it("an entry published or removed while it is checked is a hit or missing, never damaged", async () => {
    // The race the gc stress test found: entry.json read (absent), then the entry published
    // by another run, then the directory found: that was reported damaged.
    const seen = { hit: 0, missing: 0, damaged: [] as string[] };
    let running = true;
    const churn = (async () => {
      for (let i = 0; i < 40; i++) {
        const temp = store.tempPath("etl");
        await buildEntry(temp.dir, `v${i % 3}`);
        await store.publish(temp.dir, info());
        if (i % 2) await store.removeEntry(KEY);
      }
      running = false;
    })();
    const checkers = [0, 1, 2].map(async () => {
      while (running) {
        const c = await store.checkEntry(KEY);
        if (c.status === "damaged") seen.damaged.push(c.problems.join("; "));
        else if (c.status === "hit" || c.status === "missing") seen[c.status]++;
      }
    });
    await Promise.all([churn, ...checkers]);
    expect(seen.damaged).toEqual([]);
    expect(seen.hit).toBeGreaterThan(0);
    expect(seen.missing).toBeGreaterThan(0);
    // A damaged entry that stays damaged is still reported.
    await buildEntry(store.entryDir(KEY));
    expect((await store.checkEntry(KEY)).status).toBe("damaged");
  });

  it("a cache path that is a file is a storage error, not an empty cache", async () => {
    const file = path.join(root, "file");
    await writeFile(file, "");
    await expect(listCache(file)).rejects.toThrow(StorageError);
    await expect(new CacheStore(file).ensureLayout()).rejects.toThrow(/is not a directory/);
  });

  it("publishing replaces a damaged entry and leaves nothing beside it", async () => {
    await buildEntry(store.entryDir(KEY), "old and broken");
    await rm(path.join(store.entryDir(KEY), "data.bin"));
    const temp = store.tempPath("etl");
    await buildEntry(temp.dir, "new");
    await store.publish(temp.dir, info());
    expect(await readFile(path.join(store.entryDir(KEY), "data.bin"), "utf8")).toBe("new");
    expect(await listDir(store.tmp)).toEqual([]);
    expect(await listDir(store.objects)).toEqual([KEY]);
  });

  it("cleanLeftovers removes temp dirs and locks of dead processes only", async () => {
    const dead = deadPid();
    await mkdir(path.join(store.tmp, `${dead}-abcd-etl`));
    await mkdir(path.join(store.tmp, `.${dead}-abcd-etl.tmp-${dead}-ff`));
    await mkdir(path.join(store.tmp, `${process.pid}-live-etl`));
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid: dead, hostname: os.hostname(), startedAt: "x" }));
    const dry = await store.cleanLeftovers({ dryRun: true });
    expect(dry.tmp).toHaveLength(2);
    expect(await listDir(store.tmp)).toHaveLength(3);
    const removed = await store.cleanLeftovers();
    expect(removed.locks).toEqual([store.lockFile(KEY)]);
    expect(await listDir(store.tmp)).toEqual([`${process.pid}-live-etl`]);
    expect(await listDir(store.locks)).toEqual([]);
  });
});

describe("injected faults (the store's `fault` option)", () => {
  it("EROFS on every write: a StorageError naming the cache directory", async () => {
    const fresh = new CacheStore(path.join(root, "other"), { fault: { errno: "EROFS" } });
    await expect(fresh.ensureLayout()).rejects.toThrow(StorageError);
    const readOnly = new CacheStore(store.root, { fault: { errno: "EROFS" } });
    await expect(readOnly.tryLock(KEY)).rejects.toThrow(/read-only/);
    expect(await listDir(store.locks)).toEqual([]);
  });

  it("ENOSPC at publish: the entry is not created and a failed touch does not throw", async () => {
    const full = new CacheStore(store.root, { fault: { errno: "ENOSPC", op: "publish" } });
    const temp = full.tempPath("etl");
    await buildEntry(temp.dir);
    await expect(full.publish(temp.dir, info())).rejects.toThrow(/is full/);
    expect(await listDir(store.objects)).toEqual([]);
    const readOnly = new CacheStore(store.root, { fault: { errno: "EROFS", op: "touch" } });
    expect(await readOnly.touch(info())).toBe(false);
  });
});
