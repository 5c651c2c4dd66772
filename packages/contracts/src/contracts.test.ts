/**
 * The shared contracts: the split is a pure function of (user, movie, seed), manifests round-trip
 * and catch damage, publishing never leaves half an artifact, and the CLI glue parses what users
 * type.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  assertReplaceableOutput,
  BadParameterError,
  buildArtifactDir,
  canonicalJson,
  CorruptArtifactError,
  exitCodeFor,
  EXIT_CODES,
  isTraining,
  normalizeArgv,
  readManifest,
  splitHash,
  splitMask,
  StorageError,
  verifyArtifact,
  writeManifest,
  asStorageError,
  digestFileRemembered,
} from "./index.js";

const dirs: string[] = [];
async function temp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "ms-contracts-"));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe("split", () => {
  it("is deterministic, order-independent, seed-dependent and close to the requested proportion", () => {
    const n = 200_000;
    const users = new Int32Array(n);
    const movies = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      users[i] = 1 + (i % 1000);
      movies[i] = 1 + Math.floor(i / 1000) * 7;
    }
    const mask = splitMask(users, movies, 42, 0.8);
    const share = mask.reduce((a, b) => a + b, 0) / n;
    expect(share).toBeGreaterThan(0.795);
    expect(share).toBeLessThan(0.805);
    // Reversed order gives the same side for every rating.
    const rev = splitMask(users.slice().reverse(), movies.slice().reverse(), 42, 0.8);
    expect(Array.from(rev.reverse())).toEqual(Array.from(mask));
    const other = splitMask(users, movies, 43, 0.8);
    let differ = 0;
    for (let i = 0; i < n; i++) differ += mask[i] !== other[i] ? 1 : 0;
    expect(differ / n).toBeGreaterThan(0.2);
    expect(isTraining(5, 9, 42, 0.8)).toBe(splitHash(5, 9, 42) < 0.8);
    expect(splitHash(5, 9, 42)).toBeGreaterThanOrEqual(0);
    expect(splitHash(5, 9, 42)).toBeLessThan(1);
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth and keeps types apart", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, "1"], c: null } })).toBe('{"a":{"c":null,"d":[1,"1"]},"b":1}');
    expect(canonicalJson({ x: 1 })).not.toBe(canonicalJson({ x: "1" }));
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
  });
});

describe("artifacts", () => {
  it("writes a manifest whose digest names content only, and verifies it cheaply and deeply", async () => {
    const a = await temp();
    const b = await temp();
    for (const d of [a, b]) await writeFile(path.join(d, "x.bin"), "hello");
    const ma = await writeManifest(a, {
      kind: "ratings",
      files: ["x.bin"],
      params: { p: 1 },
      metrics: {},
      details: {},
      producedBy: { step: "t", version: "1" },
    });
    const mb = await writeManifest(b, {
      kind: "ratings",
      files: ["x.bin"],
      params: { p: 2 },
      metrics: {},
      details: {},
      producedBy: { step: "t", version: "2" },
    });
    expect(ma.digest).toBe(mb.digest);
    expect((await readManifest(a, "ratings")).files).toEqual([
      { path: "x.bin", bytes: 5, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
    await expect(readManifest(a, "factors")).rejects.toThrow(CorruptArtifactError);
    expect(await verifyArtifact(a, { deep: true })).toMatchObject({ ok: true, problems: [] });
    await writeFile(path.join(a, "x.bin"), "jello");
    expect((await verifyArtifact(a, { deep: false })).ok).toBe(true);
    expect((await verifyArtifact(a, { deep: true })).problems[0]).toMatch(/digest differs/);
    await truncate(path.join(a, "x.bin"), 2);
    expect((await verifyArtifact(a, { deep: false })).problems[0]).toMatch(/2 bytes, manifest says 5/);
    await writeFile(path.join(b, "manifest.json"), "{not json");
    await expect(readManifest(b)).rejects.toThrow(/not valid JSON/);
  });

  it("publishes by rename and leaves nothing behind on failure", async () => {
    const root = await temp();
    const target = path.join(root, "out");
    await buildArtifactDir(target, async (staging) => {
      await writeFile(path.join(staging, "f"), "1");
    });
    expect(await readdir(root)).toEqual(["out"]);
    await expect(
      buildArtifactDir(target, async (staging) => {
        await writeFile(path.join(staging, "f"), "2");
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await readdir(root)).toEqual(["out"]);
    expect(await readdir(target)).toEqual(["f"]);
  });

  it("refuses to replace a directory that is not an earlier output of the same kind", async () => {
    const root = await temp();
    await assertReplaceableOutput(path.join(root, "new"), "ratings");
    const mine = path.join(root, "mine");
    await mkdir(mine);
    await writeFile(path.join(mine, "a"), "1");
    await writeManifest(mine, {
      kind: "ratings",
      files: ["a"],
      params: {},
      metrics: {},
      details: {},
      producedBy: { step: "t", version: "1" },
    });
    await assertReplaceableOutput(mine, "ratings");
    await expect(assertReplaceableOutput(mine, "factors")).rejects.toThrow(BadParameterError);
    const theirs = path.join(root, "theirs");
    await mkdir(theirs);
    await writeFile(path.join(theirs, "notes.txt"), "mine");
    await expect(assertReplaceableOutput(theirs, "ratings")).rejects.toThrow(/refusing to overwrite/);
    expect(existsSync(path.join(theirs, "notes.txt"))).toBe(true);
  });
});

describe("errors and CLI glue", () => {
  it("maps errors to documented exit codes", () => {
    expect(exitCodeFor(new BadParameterError("rank", "must be >= 1"))).toBe(EXIT_CODES.BAD_PARAMETER);
    expect(exitCodeFor(Object.assign(new Error("x"), { code: "ENOSPC" }))).toBe(EXIT_CODES.STORAGE);
    expect(exitCodeFor(new Error("bug"))).toBe(1);
    const wrapped = asStorageError(Object.assign(new Error("read-only"), { code: "EROFS" }), "/cache/x");
    expect(wrapped).toBeInstanceOf(StorageError);
    expect((wrapped as Error).message).toMatch(/\/cache\/x: EROFS/);
  });

  it("glues negative numbers to string flags only", () => {
    const opts = { "max-row-limit": { type: "string" as const, description: "" }, json: { type: "boolean" as const, description: "" } };
    expect(normalizeArgv(["--max-row-limit", "-1", "--json"], opts)).toEqual(["--max-row-limit=-1", "--json"]);
    expect(normalizeArgv(["--max-row-limit=-1"], opts)).toEqual(["--max-row-limit=-1"]);
    expect(normalizeArgv(["--json", "-1"], opts)).toEqual(["--json", "-1"]);
  });
});

describe("digestFileRemembered", () => {
  it("reuses a digest while the file is unchanged and re-hashes after any edit", async () => {
    const dir = await temp();
    const cache = path.join(dir, "cache");
    const file = path.join(dir, "ratings.csv");
    await writeFile(file, "a,b\n1,2\n");
    const first = await digestFileRemembered(file, cache);
    expect(first.cached).toBe(false);
    const again = await digestFileRemembered(file, cache);
    expect(again).toEqual({ ...first, cached: true });
    // Same size, same mtime forced back: ctime still moves, so the edit is seen.
    const { mtime } = await stat(file);
    await writeFile(file, "a,b\n1,3\n");
    await utimes(file, mtime, mtime);
    const edited = await digestFileRemembered(file, cache);
    expect(edited.cached).toBe(false);
    expect(edited.digest).not.toBe(first.digest);
    expect(edited.digest).toBe((await digestFileRemembered(file, path.join(dir, "other-cache"))).digest);
  });

  it("does not trust a record with an edited field or cut short: hashes again and replaces it", async () => {
    const dir = await temp();
    const cache = path.join(dir, "cache", "digests");
    const file = path.join(dir, "ratings.csv");
    await writeFile(file, "a,b\n1,2\n");
    const first = await digestFileRemembered(file, cache);
    const [name] = await readdir(cache);
    const record = path.join(cache, name);
    const text = await readFile(record, "utf8");
    for (const damaged of [
      JSON.stringify({ ...JSON.parse(text), digest: "sha256:bogus" }),
      JSON.stringify({ ...JSON.parse(text), bytes: "8" }),
      text.slice(0, text.length - 5),
    ]) {
      await writeFile(record, damaged);
      expect(await digestFileRemembered(file, cache)).toEqual({ ...first, cached: false });
      expect(await digestFileRemembered(file, cache)).toEqual({ ...first, cached: true });
    }
  });

  it("still answers when the cache cannot be written", async () => {
    const dir = await temp();
    const file = path.join(dir, "f");
    await writeFile(file, "x");
    const blocker = path.join(dir, "not-a-dir");
    await writeFile(blocker, "");
    const got = await digestFileRemembered(file, blocker);
    expect(got.cached).toBe(false);
    expect(got.digest).toMatch(/^sha256:/);
  });
});
