/**
 * `verifyArtifact` as a cache hit uses it: a manifest's digest must match its file list, every
 * listed path must stay inside the artifact, and the identity memo skips hashing only for files
 * provably unchanged (a same-size edit, or one whose mtime was put back, is re-hashed).
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, open, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import * as v from "valibot";
import { CorruptArtifactError, Fields, RACY_IDENTITY_MS, readManifest, verifyArtifact, writeManifest, type IdentityMemo } from "./index.js";

const dirs: string[] = [];
async function temp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "ms-verify-"));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  delete process.env.MS_CACHE_REHASH;
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function artifact(
  files: Record<string, string> = { "user_factors.parquet": "0123456789abcdef", "item_factors.parquet": "fedcba" },
): Promise<string> {
  const dir = await temp();
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  await writeManifest(dir, {
    kind: "factors",
    files: Object.keys(files),
    params: {},
    metrics: {},
    details: {},
    producedBy: { step: "als", version: "1" },
  });
  return dir;
}

/** The manifest as plain JSON, loose enough to be edited into something invalid. */
interface EditableManifest {
  files: { path: string; sha256: string; bytes: number }[];
  kind: string;
  schemaVersion: number;
  details: unknown;
  producedBy?: unknown;
  digest?: string;
}

async function editManifest(dir: string, edit: (m: EditableManifest) => void): Promise<void> {
  const file = path.join(dir, "manifest.json");
  const m = JSON.parse(await readFile(file, "utf8"));
  edit(m);
  await writeFile(file, JSON.stringify(m));
}

/** Flips one byte in place: same size, new content. */
async function flipByte(file: string, at = 3): Promise<void> {
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

describe("manifest integrity", () => {
  it("rejects a manifest whose digest was edited", async () => {
    const dir = await artifact();
    await editManifest(dir, (m) => (m.digest = `sha256:${"0".repeat(64)}`));
    await expect(readManifest(dir)).rejects.toThrow(CorruptArtifactError);
    const r = await verifyArtifact(dir, { deep: true });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/manifest\.json: digest: .* does not match its file list/);
  });

  it("calls a truncated manifest corrupt, naming the file", async () => {
    const dir = await artifact();
    const file = path.join(dir, "manifest.json");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.slice(0, Math.floor(text.length / 2)));
    const error = await readManifest(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toContain(`${file}: not valid JSON`);
  });

  it.each<[string, (m: EditableManifest) => void, RegExp]>([
    ["a file's sha256", (m) => (m.files[1].sha256 = "xyz"), /manifest\.json: files\[1\]\.sha256: expected 64 lowercase hex digits/],
    ["a file's size", (m) => (m.files[0].bytes = -1), /manifest\.json: files\[0\]\.bytes: /],
    ["a path listed twice", (m) => (m.files[1].path = m.files[0].path), /manifest\.json: files\[1\]\.path: "[^"]+" is listed twice/],
    ["the kind", (m) => (m.kind = "Factors Edited!"), /manifest\.json: kind: /],
    ["the schema version", (m) => (m.schemaVersion = 2), /manifest\.json: schemaVersion: schemaVersion 2 is not supported \(expected 1\)/],
    ["the details", (m) => (m.details = [1]), /manifest\.json: details: /],
    ["producedBy", (m) => delete m.producedBy, /manifest\.json: producedBy: /],
  ])("calls a manifest with an edited %s corrupt, naming the file and the field", async (_what, edit, message) => {
    const dir = await artifact();
    await editManifest(dir, edit);
    const error = await readManifest(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(path.join(dir, "manifest.json"))).toBe(true);
  });

  it("checks the step-defined parts against the schemas a reader gives", async () => {
    const dir = await artifact();
    await editManifest(dir, (m) => (m.details = { rank: "eight" }));
    const parts = { params: Fields, metrics: Fields, details: v.object({ rank: v.pipe(v.number(), v.integer()) }) };
    await expect(readManifest(dir, "factors", parts)).rejects.toThrow(/manifest\.json: details: rank: /);
    await editManifest(dir, (m) => (m.details = { rank: 8 }));
    expect((await readManifest(dir, "factors", parts)).details.rank).toBe(8);
  });

  it.each([
    ["../../../../etc/passwd", /leaves the artifact directory/],
    ["/etc/passwd", /is absolute/],
    ["a/./b", /not normalised/],
    ["a//b", /not normalised/],
    ["", /not a file name/],
  ])("rejects the path %j without touching it", async (bad, message) => {
    const dir = await artifact();
    await editManifest(dir, (m) => {
      m.files[0].path = bad;
      m.files[0].bytes = 0;
    });
    const r = await verifyArtifact(dir, { deep: true });
    expect(r.ok).toBe(false);
    expect(r.hashed).toBe(0);
    expect(r.problems.join("\n")).toMatch(message);
  });

  it("rejects a symbolic link that leads out of the artifact, accepts one that stays inside", async () => {
    const outside = await temp();
    await writeFile(path.join(outside, "secret"), "0123456789abcdef");
    const dir = await artifact();
    await rm(path.join(dir, "user_factors.parquet"));
    await symlink(path.join(outside, "secret"), path.join(dir, "user_factors.parquet"));
    const r = await verifyArtifact(dir, { deep: true });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/outside the artifact directory/);
    const inner = await artifact({ "data/x.bin": "abc", "y.bin": "abc" });
    await rm(path.join(inner, "y.bin"));
    await symlink("data/x.bin", path.join(inner, "y.bin"));
    expect((await verifyArtifact(inner, { deep: true })).ok).toBe(true);
  });

  it("rejects a listed path that is a directory or a FIFO instead of hashing it", async () => {
    const dir = await artifact();
    await rm(path.join(dir, "item_factors.parquet"));
    expect(spawnSync("mkfifo", [path.join(dir, "item_factors.parquet")]).status).toBe(0);
    const r = await verifyArtifact(dir, { deep: true });
    expect(r.problems).toEqual([expect.stringMatching(/item_factors.parquet: not a regular file/)]);
  });
});

describe("the identity memo", () => {
  it("hashes a file once it is past the racy window, then only stats it", async () => {
    const dir = await artifact();
    const first = await verifyArtifact(dir, { memo: {} });
    expect(first.ok).toBe(true);
    expect(first.hashed).toBe(2);
    // Written just now: hashed, but not remembered yet.
    expect(first.memo).toEqual({});
    await sleep(RACY_IDENTITY_MS + 100);
    const second = await verifyArtifact(dir, { memo: first.memo });
    expect(second.hashed).toBe(2);
    expect(second.memoChanged).toBe(true);
    expect(Object.keys(second.memo!).sort()).toEqual(["item_factors.parquet", "user_factors.parquet"]);
    const third = await verifyArtifact(dir, { memo: second.memo });
    expect(third).toMatchObject({ ok: true, hashed: 0, memoChanged: false });
    process.env.MS_CACHE_REHASH = "1";
    expect((await verifyArtifact(dir, { memo: second.memo })).hashed).toBe(2);
  });

  it("re-hashes a file edited in place with its size kept, and one whose mtime was put back", async () => {
    const dir = await artifact();
    await sleep(RACY_IDENTITY_MS + 100);
    const memo = (await verifyArtifact(dir, { memo: {} })).memo as IdentityMemo;
    expect(Object.keys(memo)).toHaveLength(2);
    const file = path.join(dir, "user_factors.parquet");
    await flipByte(file);
    const r = await verifyArtifact(dir, { memo });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/user_factors.parquet: content digest differs/);
    // Flip it back, wait out the racy window, remember it, then edit with size and mtime kept.
    await flipByte(file);
    await sleep(RACY_IDENTITY_MS + 100);
    const again = (await verifyArtifact(dir, { memo: {} })).memo as IdentityMemo;
    const ref = path.join(await temp(), "ref");
    await writeFile(ref, "");
    expect(spawnSync("touch", ["-r", file, ref]).status).toBe(0);
    const kept = await stat(file, { bigint: true });
    await flipByte(file);
    expect(spawnSync("touch", ["-r", ref, file]).status).toBe(0);
    const now = await stat(file, { bigint: true });
    expect([now.size, now.mtimeNs]).toEqual([kept.size, kept.mtimeNs]);
    expect(now.ctimeNs).not.toBe(kept.ctimeNs);
    const touched = await verifyArtifact(dir, { memo: again });
    expect(touched.ok).toBe(false);
    expect(touched.hashed).toBe(1);
  });

  it("a memo entry for another sha256 is not trusted", async () => {
    const dir = await artifact();
    await sleep(RACY_IDENTITY_MS + 100);
    const memo = (await verifyArtifact(dir, { memo: {} })).memo as IdentityMemo;
    const forged = { ...memo, "user_factors.parquet": { ...memo["user_factors.parquet"], sha256: "f".repeat(64) } };
    expect((await verifyArtifact(dir, { memo: forged })).hashed).toBe(1);
  });
});
