/**
 * The cache session's get-or-compute against real files and real child processes: a hit is
 * served only when its files still hash to the manifest (a same-size edit, an edit with mtime put
 * back, an edited digest, a path leading out of the entry are all damaged, reported once and
 * recomputed); gc never removes what a live run uses; locks of another host or of a reused pid
 * are not waited on forever; a cache path that is a file is a storage error everywhere.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RACY_IDENTITY_MS, StorageError, writeManifest } from "@ms/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CacheStore,
  gcCache,
  listCache,
  openSession,
  processStartTime,
  selfOwner,
  verifyCache,
  type CacheSession,
  type GetOrComputeRequest,
} from "@ms/cache";
import { listDir, ms, sandbox } from "./__tests__/harness.js";

const USER = fileURLToPath(new URL("./__tests__/cache-user.mjs", import.meta.url));
const KEY = "c".repeat(64);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let root: string;
let cache: string;
let sessions: CacheSession[];
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-session-"));
  cache = path.join(root, "cache");
  sessions = [];
});
afterEach(async () => {
  delete process.env.MS_LOCK_LEASE_MS;
  for (const s of sessions) await s.close();
  await rm(root, { recursive: true, force: true });
});

async function session(): Promise<CacheSession> {
  const s = openSession(cache);
  sessions.push(s);
  return s;
}

/** The trivial step: two factor files and a manifest. */
function request(key = KEY, over: Partial<GetOrComputeRequest> = {}): GetOrComputeRequest & { damaged: string[][]; computed: number } {
  const req = {
    key,
    step: "als",
    info: { version: "1", codeDigest: "sha256:code", params: { rank: 4 }, inputs: { ratings: "sha256:r" }, producedByRun: "run-1" },
    damaged: [] as string[][],
    computed: 0,
    async compute(dir: string) {
      req.computed++;
      await mkdir(dir);
      await writeFile(path.join(dir, "user_factors.parquet"), `user factors of ${key}`);
      await writeFile(path.join(dir, "item_factors.parquet"), `item factors of ${key}`);
      await writeManifest(dir, {
        kind: "factors",
        files: ["user_factors.parquet", "item_factors.parquet"],
        params: {},
        metrics: { rmse: 0.9 },
        details: {},
        producedBy: { step: "als", version: "1", key },
      });
    },
    onDamaged(_key: string, problems: string[]) {
      req.damaged.push(problems);
    },
    ...over,
  };
  return req;
}

async function flipByte(file: string, at = 2): Promise<void> {
  const h = await open(file, "r+");
  try {
    const b = Buffer.alloc(1);
    await h.read(b, 0, 1, at);
    b[0] ^= 0x20;
    await h.write(b, 0, 1, at);
  } finally {
    await h.close();
  }
}

/** The fields of a manifest these tests damage. */
interface EditableManifest {
  digest: string;
  files: { path: string; bytes: number }[];
}

async function editManifest(dir: string, edit: (m: EditableManifest) => void): Promise<void> {
  const file = path.join(dir, "manifest.json");
  const m = JSON.parse(await readFile(file, "utf8"));
  edit(m);
  await writeFile(file, JSON.stringify(m));
}

describe("getOrCompute", () => {
  it("computes once, then serves the verified entry; entry.json records the recomputed digest", async () => {
    const s = await session();
    const req = request();
    const first = await s.getOrCompute(req);
    expect(first.cached).toBe(false);
    expect(first.dir).toBe(path.join(cache, "objects", KEY));
    expect(first.entry).toMatchObject({ key: KEY, step: "als", version: "1", producedByRun: "run-1", outputDigest: first.manifest.digest });
    const again = await s.getOrCompute(req);
    expect(again).toMatchObject({ cached: true, dir: first.dir });
    expect(again.manifest.digest).toBe(first.manifest.digest);
    expect(req.computed).toBe(1);
    expect(await listDir(path.join(cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(cache, "locks"))).toEqual([]);
    const forced = await s.getOrCompute({ ...req, force: true });
    expect(forced.cached).toBe(false);
    expect(req.computed).toBe(2);
  });

  it("a byte flipped in user_factors.parquet (size kept) is damaged: reported once, recomputed, never served", async () => {
    const s = await session();
    const req = request();
    await s.getOrCompute(req);
    const file = path.join(cache, "objects", KEY, "user_factors.parquet");
    const good = await readFile(file, "utf8");
    await flipByte(file);
    const out = await s.getOrCompute(req);
    expect(out.cached).toBe(false);
    expect(req.damaged).toEqual([[expect.stringMatching(/user_factors\.parquet: content digest differs/)]]);
    expect(await readFile(file, "utf8")).toBe(good);
    // Damaged again: recomputed again, but reported only once per process.
    await flipByte(file);
    expect((await s.getOrCompute(req)).cached).toBe(false);
    expect(req.damaged).toHaveLength(1);
  });

  it("an edit with size and mtime kept (touch -r; only ctime moves) is seen although the identity memo is in use", async () => {
    const s = await session();
    const req = request();
    await s.getOrCompute(req);
    // Past the racy window, a hit re-hashes once and records the files' identities...
    await sleep(RACY_IDENTITY_MS + 100);
    expect((await s.getOrCompute(req)).cached).toBe(true);
    const entry = JSON.parse(await readFile(path.join(cache, "objects", KEY, "entry.json"), "utf8"));
    expect(Object.keys(entry.identities).sort()).toEqual(["item_factors.parquet", "user_factors.parquet"]);
    expect((await s.getOrCompute(req)).cached).toBe(true);
    // ...and a file whose identity changed is hashed again.
    const file = path.join(cache, "objects", KEY, "user_factors.parquet");
    const ref = path.join(root, "ref");
    await writeFile(ref, "");
    expect(spawnSync("touch", ["-r", file, ref]).status).toBe(0);
    const before = await stat(file, { bigint: true });
    await flipByte(file);
    expect(spawnSync("touch", ["-r", ref, file]).status).toBe(0);
    const after = await stat(file, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
    const out = await s.getOrCompute(req);
    expect(out.cached).toBe(false);
    expect(req.damaged).toHaveLength(1);
  });

  it("an edited manifest digest or a path out of the entry is damaged for hits and for ms cache verify", async () => {
    const s = await session();
    const req = request();
    await s.getOrCompute(req);
    const other = "d".repeat(64);
    await s.getOrCompute(request(other));
    const dir = path.join(cache, "objects", KEY);
    await editManifest(dir, (m) => (m.digest = `sha256:${"0".repeat(64)}`));
    await editManifest(path.join(cache, "objects", other), (m) => {
      m.files[0].path = "../../../../etc/passwd";
      m.files[0].bytes = Number(spawnSync("stat", ["-c", "%s", "/etc/passwd"], { encoding: "utf8" }).stdout || "0");
    });
    const report = await verifyCache(cache);
    expect(report.ok).toBe(false);
    const byKey = Object.fromEntries(report.damaged.map((d) => [d.key, d.problems.join("; ")]));
    expect(byKey[KEY]).toMatch(/digest .* does not match its file list/);
    expect(byKey[other]).toMatch(/leaves the artifact directory/);
    // The bin maps it to exit 5.
    const r = await ms(["cache", "verify", "--cache-dir", cache], {
      root,
      cache,
      mlruns: path.join(root, "mlruns"),
      env: process.env,
      dispose: async () => undefined,
    });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(KEY);
    // A run never serves them (and so never hands the edited digest downstream).
    const out = await s.getOrCompute(req);
    expect(out.cached).toBe(false);
    expect(out.manifest.digest).not.toBe(`sha256:${"0".repeat(64)}`);
    expect((await s.getOrCompute(request(other))).cached).toBe(false);
    expect((await verifyCache(cache)).ok).toBe(true);
  });

  it("a step whose output does not match its own manifest is not cached", async () => {
    const s = await session();
    const req = request(KEY, {
      async compute(dir: string) {
        await mkdir(dir);
        await writeFile(path.join(dir, "user_factors.parquet"), "abc");
        await writeManifest(dir, {
          kind: "factors",
          files: ["user_factors.parquet"],
          params: {},
          metrics: {},
          details: {},
          producedBy: { step: "als", version: "1" },
        });
        await writeFile(path.join(dir, "user_factors.parquet"), "abd");
      },
    });
    await expect(s.getOrCompute(req)).rejects.toThrow(/does not match its own manifest/);
    expect(await listDir(path.join(cache, "objects"))).toEqual([]);
    expect(await listDir(path.join(cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(cache, "locks"))).toEqual([]);
  });
});

/** Starts cache-user.mjs in "hold" mode and resolves once it has its entries. */
async function holder(
  keys: string[],
  extra: Record<string, unknown> = {},
): Promise<{ child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> }> {
  const child = spawn(process.execPath, [USER, JSON.stringify({ cache, keys, mode: "hold", ...extra })], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on("close", (code) => resolve({ code, stderr })));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (stdout.includes("ready")) resolve();
    });
    child.on("close", (code) => reject(new Error(`cache-user exited ${code} before ready: ${stderr}`)));
  });
  return { child, done };
}

describe("gc beside a running session", () => {
  it("keeps the entries a live run has read or just published, removes them once it closes", async () => {
    const hit = "e".repeat(64);
    const fresh = "f".repeat(64);
    const seed = spawnSync(process.execPath, [USER, JSON.stringify({ cache, keys: [hit], mode: "loop", iterations: 1 })], {
      encoding: "utf8",
    });
    expect(seed.status, seed.stderr).toBe(0);
    const { child, done } = await holder([hit, fresh]);
    const gc = await gcCache(cache, { olderThanMs: 0 });
    expect(gc.removed).toEqual([]);
    expect(gc.skippedLocked.sort()).toEqual([hit, fresh].sort());
    expect((await gcCache(cache, { olderThanMs: 0, dryRun: true })).removed).toEqual([]);
    expect((await verifyCache(cache, { remove: true })).ok).toBe(true);
    child.stdin!.end("go\n");
    const r = await done;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const after = await gcCache(cache, { olderThanMs: 0 });
    expect(after.removed.map((x) => x.key).sort()).toEqual([hit, fresh].sort());
    expect(await listDir(path.join(cache, "leases"))).toEqual([]);
  });

  it("a run that finds gc holding the key's lock waits for it, then recomputes what gc removed", async () => {
    const store = new CacheStore(cache);
    const s = await session();
    const req = request();
    await s.getOrCompute(req);
    await sessions.pop()!.close();
    const gcLock = await store.tryLock(KEY, "gc");
    expect(gcLock).toBeDefined();
    const waits: number[] = [];
    const other = await session();
    const pending = other.getOrCompute({ ...req, onWait: (h) => waits.push(h.pid) });
    await sleep(100);
    // gc read the leases before the run wrote its own: it removes the entry, then lets go.
    await store.removeEntry(KEY);
    await gcLock!.release();
    const out = await pending;
    expect(out.cached).toBe(false);
    expect(waits).toEqual([process.pid]);
  });

  it("leases of dead processes are stale and cleaned; their keys are not protected", async () => {
    const store = new CacheStore(cache);
    await (await session()).getOrCompute(request());
    await sessions.pop()!.close();
    const dead = Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
    await mkdir(store.leases, { recursive: true });
    writeFileSync(path.join(store.leases, `${dead}-0000.lease`), JSON.stringify({ ...selfOwner(), pid: dead, keys: [KEY] }));
    const gc = await gcCache(cache, { olderThanMs: 0 });
    expect(gc.removed.map((x) => x.key)).toEqual([KEY]);
    expect(gc.leftovers.locks).toEqual([path.join(store.leases, `${dead}-0000.lease`)]);
    expect(await listDir(store.leases)).toEqual([]);
  });
});

describe("stale locks are never waited on forever", () => {
  it("a lock from another host name is taken over once its lease lapses; the waiter hears who and for how long", async () => {
    process.env.MS_LOCK_LEASE_MS = "400";
    const store = new CacheStore(cache);
    await store.ensureLayout();
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid: 4242, hostname: "other-container", startedAt: new Date().toISOString() }));
    const waits: { hostname: string; waitMs: number | undefined }[] = [];
    const s = await session();
    const out = await s.getOrCompute(request(KEY, { onWait: (h, waitMs) => waits.push({ hostname: h.hostname, waitMs }) }));
    expect(out.cached).toBe(false);
    expect(waits).toHaveLength(1);
    expect(waits[0].hostname).toBe("other-container");
    expect(waits[0].waitMs).toBeGreaterThan(0);
    expect(waits[0].waitMs).toBeLessThanOrEqual(400);
  });

  it("a lock whose pid is now another live process (pid 1, wrong start time) is stale at once, --force included", async () => {
    const store = new CacheStore(cache);
    await store.ensureLayout();
    const me = selfOwner();
    const wrongStart = String(Number(processStartTime(1) ?? "0") + 12345);
    const reused = JSON.stringify({ ...me, pid: 1, startTime: wrongStart, startedAt: "2020-01-01T00:00:00Z" });
    for (const force of [false, true]) {
      await writeFile(store.lockFile(KEY), reused);
      const waits: number[] = [];
      const out = await (await session()).getOrCompute(request(KEY, { force, onWait: (h) => waits.push(h.pid) }));
      expect(out.cached).toBe(false);
      expect(waits).toEqual([]);
    }
  });

  it("a live process's lock is kept and renewed; gc counts and removes stale locks of both kinds", async () => {
    process.env.MS_LOCK_LEASE_MS = "200";
    const store = new CacheStore(cache);
    await store.ensureLayout();
    const held = await store.tryLock(KEY);
    expect(held).toBeDefined();
    const first = (await stat(store.lockFile(KEY))).mtimeMs;
    await sleep(400);
    expect((await stat(store.lockFile(KEY))).mtimeMs).toBeGreaterThan(first);
    expect(await store.tryLock(KEY)).toBeUndefined();
    const foreignOld = store.lockFile("1".repeat(64));
    const foreignFresh = store.lockFile("2".repeat(64));
    const reused = store.lockFile("3".repeat(64));
    await writeFile(foreignOld, JSON.stringify({ pid: 7, hostname: "other-container", startedAt: "x" }));
    const long = new Date(Date.now() - 3_600_000);
    await utimes(foreignOld, long, long);
    await writeFile(foreignFresh, JSON.stringify({ pid: 7, hostname: "other-container", startedAt: "x" }));
    await writeFile(reused, JSON.stringify({ ...selfOwner(), pid: 1, startTime: String(Number(processStartTime(1) ?? "0") + 1) }));
    process.env.MS_LOCK_LEASE_MS = "60000";
    const gc = await gcCache(cache, {});
    expect(gc.leftovers.locks.sort()).toEqual([foreignOld, reused].sort());
    expect(await listDir(store.locks)).toEqual([`${"2".repeat(64)}.lock`, `${KEY}.lock`]);
    await held!.release();
    expect(await listDir(store.locks)).toEqual([`${"2".repeat(64)}.lock`]);
  });
});

describe("a cache path that is a file", () => {
  it("is a storage error (exit 8) for ms run and every ms cache command, never a success", async () => {
    const file = path.join(root, "not-a-dir");
    await writeFile(file, "");
    await expect(openSession(file).getOrCompute(request())).rejects.toThrow(StorageError);
    await expect(listCache(file)).rejects.toThrow(/is not a directory/);
    await expect(verifyCache(file)).rejects.toThrow(StorageError);
    await expect(gcCache(file, { olderThanMs: 0 })).rejects.toThrow(StorageError);
    const box = await sandbox();
    try {
      const env = { MS_CACHE_DIR: file };
      for (const args of [
        ["cache", "ls"],
        ["cache", "verify"],
        ["cache", "gc", "--older-than", "0"],
        ["run", "--dataset", "synthetic", "-P", "synthetic_rows=100"],
      ]) {
        const r = await ms(args, box, env);
        expect(r.code, args.join(" ")).toBe(8);
        expect(r.stderr).toMatch(/not-a-dir is not a directory/);
      }
      const nested = await ms(["cache", "ls", "--cache-dir", path.join(file, "sub")], box);
      expect(nested.code).toBe(8);
    } finally {
      await box.dispose();
    }
  });
});
