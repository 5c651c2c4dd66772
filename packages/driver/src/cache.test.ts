/**
 * `ms cache ls | verify | gc` through the built bin, on a cache filled by two small runs plus
 * leftovers of a killed process (a temp directory and a stale lock).
 */
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, listDir, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let first: RunDoc;
let second: RunDoc;
beforeAll(async () => {
  box = await sandbox();
  first = await runJson(SMALL, box);
  second = await runJson([...SMALL, "-P", "keras_hidden_units=5"], box);
});
afterAll(async () => box.dispose());

async function leftovers(): Promise<void> {
  const dead = Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
  await mkdir(path.join(box.cache, "tmp", `${dead}-dead-als`, "half"), { recursive: true });
  await writeFile(
    path.join(box.cache, "locks", `${"b".repeat(64)}.lock`),
    JSON.stringify({ pid: dead, hostname: os.hostname(), startedAt: "x" }),
  );
  await mkdir(path.join(box.cache, "downloads"), { recursive: true });
  await writeFile(path.join(box.cache, "downloads", `.partial-${dead}-1.zip`), "half an archive");
}

describe("ms cache ls", () => {
  it("lists key, step, parameters, size, created, last used and producing run", async () => {
    const r = await ms(["cache", "ls", "--json"], box);
    expect(r.code).toBe(0);
    const { entries } = JSON.parse(r.stdout);
    expect(entries).toHaveLength(7);
    const keras = entries.filter((e: { step: string }) => e.step === "keras");
    expect(keras.map((e: { producedByRun: string }) => e.producedByRun).sort()).toEqual(
      [first.steps[4].runId, second.steps[4].runId].sort(),
    );
    const newest = keras.find((e: { key: string }) => e.key === second.steps[4].key);
    expect(newest.params.keras_hidden_units).toBe(5);
    expect(newest.bytes).toBeGreaterThan(1000);
    expect(Date.parse(newest.createdAt)).toBeGreaterThan(0);
    const text = await ms(["cache", "ls", "--step", "als"], box);
    expect(text.stdout).toContain(first.steps[2].key.slice(0, 12));
    expect(text.stdout).not.toContain(first.steps[4].key.slice(0, 12));
  });
});

describe("ms cache verify", () => {
  it("is clean on intact entries and ignores temp directories and stale locks", async () => {
    await leftovers();
    const r = await ms(["cache", "verify", "--json"], box);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, checked: 7, damaged: [] });
  });

  it("--remove deletes a damaged entry", async () => {
    const file = path.join(box.cache, "objects", second.steps[4].key, "model.json");
    await writeFile(file, "{}");
    expect((await ms(["cache", "verify"], box)).code).toBe(5);
    const r = await ms(["cache", "verify", "--remove", "--json"], box);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).damaged).toEqual([expect.objectContaining({ key: second.steps[4].key, removed: true })]);
    expect(await listDir(path.join(box.cache, "objects"))).not.toContain(second.steps[4].key);
    // ...and the next run recomputes it.
    const again = await runJson([...SMALL, "-P", "keras_hidden_units=5"], box);
    expect(again.steps[4].cached).toBe(false);
  });
});

describe("ms cache gc", () => {
  it("--keep N --dry-run reports the least recently used entries per step and removes nothing", async () => {
    await runJson(SMALL, box); // first's keras entry is now the most recently used
    expect(await listDir(path.join(box.cache, "tmp"))).toEqual([]); // the run removed the leftovers...
    await leftovers(); // ...so make new ones for gc
    const r = await ms(["cache", "gc", "--keep", "1", "--dry-run", "--json"], box);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.removed.map((x: { key: string }) => x.key)).toEqual([second.steps[4].key]);
    expect(doc.leftovers.tmp).toHaveLength(1);
    expect(doc.leftovers.locks).toHaveLength(1);
    expect(doc.leftovers.downloads.length).toBeGreaterThanOrEqual(1); // runs on synthetic data never download, so earlier ones stay too
    expect(await listDir(path.join(box.cache, "objects"))).toContain(second.steps[4].key);
  });

  it("--keep N removes them, and the leftovers of killed runs", async () => {
    const r = await ms(["cache", "gc", "--keep", "1", "--json"], box);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).removed).toHaveLength(1);
    const objects = await listDir(path.join(box.cache, "objects"));
    expect(objects).toHaveLength(6);
    expect(objects).not.toContain(second.steps[4].key);
    expect(await listDir(path.join(box.cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(box.cache, "locks"))).toEqual([]);
    expect(await listDir(path.join(box.cache, "downloads"))).toEqual([]);
  });

  it("--older-than removes by last use", async () => {
    const keep = await ms(["cache", "gc", "--older-than", "1d", "--json"], box);
    expect(JSON.parse(keep.stdout).removed).toEqual([]);
    const all = await ms(["cache", "gc", "--older-than", "0", "--json"], box);
    expect(JSON.parse(all.stdout).removed).toHaveLength(6);
    expect(await listDir(path.join(box.cache, "objects"))).toEqual([]);
    expect((await ms(["cache", "gc", "--older-than", "soon"], box)).code).toBe(2);
    expect((await ms(["cache", "frobnicate"], box)).code).toBe(2);
  });
});
