/**
 * Stress: `gc --older-than 0` in a loop beside five processes that use the cache at once (each
 * opens sessions, gets or computes shared keys, reads what it got again later, closes). No user
 * may be handed a missing or wrong file, and gc must really have removed entries in between.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sha256Hex } from "@ms/contracts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { gcCache, verifyCache } from "@ms/cache";
import { listDir, ms, sandbox, type Sandbox } from "./__tests__/harness.js";

const USER = fileURLToPath(new URL("./__tests__/cache-user.mjs", import.meta.url));
const KEYS = ["a", "b", "c", "d"].map((k) => sha256Hex(k));

let root: string;
let box: Sandbox;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-stress-"));
  box = await sandbox();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await box.dispose();
});

function user(cache: string, keys: string[], iterations: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [USER, JSON.stringify({ cache, keys, mode: "loop", iterations, computeMs: 3 })], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

it("five concurrent cache users lose nothing while gc --older-than 0 runs in a loop", async () => {
  const cache = path.join(root, "cache");
  let running = true;
  const users = Promise.all([0, 1, 2, 3, 4].map((i) => user(cache, [...KEYS.slice(i % 4), ...KEYS.slice(0, i % 4)], 15))).finally(() => {
    running = false;
  });
  let removed = 0;
  let skipped = 0;
  let rounds = 0;
  const gcLoop = (async () => {
    while (running) {
      const r = await gcCache(cache, { olderThanMs: 0 });
      removed += r.removed.length;
      skipped += r.skippedLocked.length;
      rounds++;
    }
  })();
  // The built bin takes part too, in its own process.
  const binLoop = (async () => {
    let n = 0;
    while (running) {
      const r = await ms(["cache", "gc", "--older-than", "0", "--json"], box, { MS_CACHE_DIR: cache });
      expect(r.code, r.stderr).toBe(0);
      removed += JSON.parse(r.stdout).removed.length;
      n++;
    }
    return n;
  })();
  const results = await users;
  await gcLoop;
  await binLoop;
  for (const r of results) {
    expect(r.stderr, r.stderr).not.toMatch(/cache-user:|damaged/);
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout);
    expect(stats.computed + stats.cached).toBe(15 * KEYS.length);
  }
  expect(rounds).toBeGreaterThan(0);
  expect(removed).toBeGreaterThan(0);
  expect(skipped).toBeGreaterThan(0);
  // Nothing is left behind but intact entries.
  expect((await verifyCache(cache)).ok).toBe(true);
  await gcCache(cache, { olderThanMs: 0 });
  expect(await listDir(path.join(cache, "objects"))).toEqual([]);
  expect(await listDir(path.join(cache, "leases"))).toEqual([]);
  expect(await listDir(path.join(cache, "locks"))).toEqual([]);
  expect(await listDir(path.join(cache, "tmp"))).toEqual([]);
}, 180_000);

it("five concurrent `ms run` lose nothing while `ms cache gc --older-than 0` runs in a loop", async () => {
  const small = await sandbox("ms-stress-run-");
  try {
    let running = true;
    // Two data sizes, so that runs both share keys (and wait on each other) and compute their own.
    const runs = Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        ms(
          [
            "run",
            "--dataset",
            "synthetic",
            "-P",
            `synthetic_rows=${i % 2 ? 3000 : 2000}`,
            "-P",
            "als_max_iter=2",
            "-P",
            "als_rank=3",
            "-P",
            "keras_epochs=1",
            "--log-artifacts",
            "none",
            "--json",
          ],
          small,
        ),
      ),
    ).finally(() => {
      running = false;
    });
    let gcRuns = 0;
    let removed = 0;
    while (running) {
      const r = await ms(["cache", "gc", "--older-than", "0", "--json"], small);
      expect(r.code, r.stderr).toBe(0);
      removed += JSON.parse(r.stdout).removed.length;
      gcRuns++;
    }
    for (const r of await runs) {
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      const doc = JSON.parse(r.stdout) as { steps: { step: string }[] };
      expect(doc.steps.map((s) => s.step)).toEqual(["download", "etl", "als", "fm", "keras", "rank"]);
    }
    expect(gcRuns).toBeGreaterThan(0);
    expect(removed).toBeGreaterThan(0);
    expect((await verifyCache(small.cache)).ok).toBe(true);
  } finally {
    await small.dispose();
  }
}, 300_000);
