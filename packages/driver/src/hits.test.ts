/**
 * `ms run` through the built bin serves a hit only when its files still hash to the manifest: one
 * byte flipped in als's user_factors.parquet (size kept), and the same with the mtime put back
 * (`touch -r`, only ctime moves) after the identity memo was recorded, both rerun als only. And a
 * lock left by another host, or by a pid now reused by another live process, never hangs a run.
 */
import { spawnSync } from "node:child_process";
import { open, readFile, stat, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { RACY_IDENTITY_MS } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, cachedOf, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let cold: RunDoc;
beforeAll(async () => {
  box = await sandbox();
  cold = await runJson(SMALL, box);
});
afterAll(async () => box.dispose());

async function flipByte(file: string, at = 100): Promise<void> {
  const h = await open(file, "r+");
  try {
    const b = Buffer.alloc(1);
    await h.read(b, 0, 1, at);
    b[0] ^= 0xff;
    await h.write(b, 0, 1, at);
  } finally {
    await h.close();
  }
}

describe("ms run cache hits", () => {
  it("a byte flipped in user_factors.parquet is not served: als reruns, keras (same als digest) stays cached", async () => {
    const file = path.join(box.cache, "objects", cold.steps[2].key, "user_factors.parquet");
    const size = (await stat(file)).size;
    await flipByte(file);
    expect((await stat(file)).size).toBe(size);
    const doc = await runJson(SMALL, box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: false, fm: true, keras: true, rank: true, ranking: true });
    expect(doc.steps[2].outputs.factors.digest).toBe(cold.steps[2].outputs.factors.digest);
  });

  it("an edit with size and mtime kept (touch -r) is seen once the entry's identities are recorded", async () => {
    await new Promise((resolve) => setTimeout(resolve, RACY_IDENTITY_MS + 100));
    expect(cachedOf(await runJson(SMALL, box))).toEqual({
      download: true,
      etl: true,
      als: true,
      fm: true,
      keras: true,
      rank: true,
      ranking: true,
    });
    const dir = path.join(box.cache, "objects", cold.steps[2].key);
    expect(Object.keys(JSON.parse(await readFile(path.join(dir, "entry.json"), "utf8")).identities)).toContain("user_factors.parquet");
    const file = path.join(dir, "user_factors.parquet");
    const ref = path.join(box.root, "ref");
    await writeFile(ref, "");
    expect(spawnSync("touch", ["-r", file, ref]).status).toBe(0);
    await flipByte(file);
    expect(spawnSync("touch", ["-r", ref, file]).status).toBe(0);
    const doc = await runJson(SMALL, box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: false, fm: true, keras: true, rank: true, ranking: true });
  });
});

describe("ms run and locks it cannot check", () => {
  async function lockAls(owner: Record<string, unknown>, ageMs: number): Promise<string> {
    const lock = path.join(box.cache, "locks", `${cold.steps[2].key}.lock`);
    await writeFile(lock, JSON.stringify({ startedAt: new Date().toISOString(), ...owner }));
    const then = new Date(Date.now() - ageMs);
    await utimes(lock, then, then);
    return lock;
  }

  it("a lock from another host name is waited on for its lease at most, --force included", async () => {
    await lockAls({ pid: 4242, hostname: "another-container" }, 0);
    const started = Date.now();
    const r = await ms(["run", ...SMALL, "--force", "als", "--json"], box, { MS_LOCK_LEASE_MS: "3000" });
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(r.stderr).toMatch(/another-container pid 4242 is computing this step; waiting for it at most \d+ s/);
    expect(cachedOf(JSON.parse(r.stdout))).toEqual({
      download: true,
      etl: true,
      als: false,
      fm: true,
      keras: true,
      rank: true,
      ranking: true,
    });
  });

  it("a lock whose pid is now another live process (start time differs) is stale at once", async () => {
    await lockAls({ pid: process.pid, hostname: os.hostname(), startTime: "1" }, 0);
    const r = await ms(["run", ...SMALL, "--force", "als", "--json"], box, { MS_LOCK_LEASE_MS: "600000" });
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    expect(r.stderr).not.toMatch(/waiting for it/);
  });
});
