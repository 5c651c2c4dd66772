/**
 * The shared file helpers: an atomic write leaves the old or the new content and no temporary
 * file, and the walk lists regular files only, sorted, skipping what it is told to.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { walkFiles, writeFileAtomic } from "./files.js";
import { mixSeed, mulberry32 } from "./random.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ms-files-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  it("replaces the content and leaves no temporary file", async () => {
    const file = path.join(dir, "a.json");
    await writeFileAtomic(file, "old");
    await writeFileAtomic(file, "new");
    expect(await readFile(file, "utf8")).toBe("new");
    expect(await readdir(dir)).toEqual(["a.json"]);
  });

  it("keeps the old content and cleans up when the rename fails", async () => {
    const target = path.join(dir, "target");
    await mkdir(path.join(target, "x"), { recursive: true });
    await expect(writeFileAtomic(target, "data")).rejects.toThrow();
    expect(await readdir(dir)).toEqual(["target"]);
  });
});

describe("walkFiles", () => {
  it("lists regular files below a root, sorted, with / separators, skipping names it is told to", async () => {
    await mkdir(path.join(dir, "b", "c"), { recursive: true });
    await writeFile(path.join(dir, "z.txt"), "");
    await writeFile(path.join(dir, "b", "c", "d.js"), "");
    await writeFile(path.join(dir, "b", ".x.tmp"), "");
    await symlink(path.join(dir, "z.txt"), path.join(dir, "link"));
    expect(await walkFiles(dir, { skip: (n) => n.endsWith(".tmp") })).toEqual(["b/c/d.js", "z.txt"]);
    expect(await walkFiles(path.join(dir, "missing"))).toEqual([]);
  });
});

describe("mulberry32", () => {
  it("repeats for a seed, differs across seeds, and stays in [0, 1)", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(mulberry32(43)()).not.toBe(xs[0]);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });

  it("mixSeed spreads nearby seeds and salts apart", () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 50; seed++) for (let salt = 0; salt < 4; salt++) seen.add(mixSeed(seed, salt));
    expect(seen.size).toBe(200);
  });
});
