/**
 * S3RemoteStore against a real S3 server (s3proxy on 127.0.0.1, started here and stopped after),
 * through @ms/cache's session: a computed entry is pushed (blobs, then the record), an empty cache
 * gets it back as a remote hit with the same files, `listEntries` lists it, `pullEntries` and
 * `pushEntries` move entries by key prefix (skipping unshared steps), a blob damaged on the server
 * is a miss reported once and repaired by the next push, and a server that is down is one warning
 * (a NetworkError when required). The `ms` end-to-end tests are the driver's.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { CacheStore, cacheKey, openSession, pullEntries, pushEntries, type GetOrComputeRequest } from "@ms/cache";
import { NetworkError, createLogger, sha256Hex, writeManifest } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3proxy, type S3proxyServer } from "../../../tools/s3proxy/server.mjs";
import { S3RemoteStore } from "./s3-store.js";

let s3: S3proxyServer;
let root: string;
const CLAIM = { version: "0", codeDigest: "sha256:c", params: { rank: 4 }, inputs: {} };
const KEY = cacheKey({ step: "als", ...CLAIM });
const OTHER = sha256Hex("another entry");

beforeAll(async () => {
  s3 = await startS3proxy();
  root = await mkdtemp(path.join(tmpdir(), "ms-cache-s3-"));
}, 15 * 60_000);

afterAll(async () => {
  await s3?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

const cacheDir = (name: string) => path.join(root, name);

function remote(
  prefix: string,
  mode: "read" | "write" | "readwrite" = "readwrite",
  warnings: string[] = [],
  endpoint?: string,
  required = false,
): S3RemoteStore {
  const destination = new Writable({
    write(chunk, _enc, done) {
      warnings.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: "warn", destination });
  return new S3RemoteStore({ url: `s3://${s3.bucket}/${prefix}`, mode, env: s3.env, logger, required, ...(endpoint ? { endpoint } : {}) });
}

/** A request whose compute writes `content`, or fails when `content` is undefined (it must not run). */
function request(key: string, content: string | undefined, over: Partial<GetOrComputeRequest> = {}): GetOrComputeRequest {
  return {
    key,
    step: "als",
    info: { ...CLAIM, producedByRun: "run-1" },
    async compute(dir) {
      if (content === undefined) throw new Error("computed, but a remote hit was expected");
      await mkdir(dir);
      await writeFile(path.join(dir, "user_factors.parquet"), content);
      await writeManifest(dir, {
        kind: "factors",
        files: ["user_factors.parquet"],
        params: over.info?.params ?? CLAIM.params,
        metrics: {},
        details: {},
        producedBy: { step: "als", version: "0", key },
      });
    },
    ...over,
  };
}

async function getOrCompute(cache: string, store: S3RemoteStore, req: GetOrComputeRequest) {
  const session = openSession(new CacheStore(cache), { remote: store });
  try {
    return await session.getOrCompute(req);
  } finally {
    await session.close();
  }
}

describe("S3RemoteStore on s3proxy", () => {
  it("pushes a computed entry, which an empty cache gets back as a remote hit with the same files", async () => {
    const pushed = await getOrCompute(cacheDir("a"), remote("team"), request(KEY, "factors of a"));
    expect(pushed.source).toBe("computed");
    expect(pushed.transfer).toMatchObject({ direction: "up", blobs: 2 });
    const got = await getOrCompute(cacheDir("b"), remote("team", "read"), request(KEY, undefined));
    expect(got.source).toBe("remote");
    expect(got.transfer).toMatchObject({ direction: "down", blobs: 2 });
    expect(got.manifest.digest).toBe(pushed.manifest.digest);
    expect(await readFile(path.join(got.dir, "user_factors.parquet"), "utf8")).toBe("factors of a");
    const listed = await remote("team", "read").listEntries();
    expect(listed.map((e) => [e.key, e.step, e.producedByRun])).toEqual([[KEY, "als", "run-1"]]);
  });

  it("pullEntries by key prefix, and pushEntries skipping the entries of unshared steps", async () => {
    const pulled = await pullEntries({ cacheDir: cacheDir("c"), remote: remote("team", "read"), keys: [KEY.slice(0, 8)] });
    expect(pulled).toEqual([{ key: KEY, step: "als", source: "remote", bytes: expect.any(Number) }]);
    expect(await new CacheStore(cacheDir("c")).listKeys()).toEqual([KEY]);
    await getOrCompute(cacheDir("a"), remote("team", "read"), request(OTHER, "another", { step: "download" }));
    const report = await pushEntries({
      cacheDir: cacheDir("a"),
      remote: remote("copied", "write"),
      unshared: new Map([["download", "names a local file"]]),
    });
    expect(report.pushed.map((p) => p.key)).toEqual([KEY]);
    expect(report.skipped).toEqual([{ key: OTHER, step: "download", reason: "names a local file" }]);
    expect((await remote("copied", "read").listEntries()).map((e) => e.key)).toEqual([KEY]);
  });

  it("a blob damaged on the server is a miss reported once, recomputed, and repaired by the push", async () => {
    const blobs = path.join(s3.bucketDir, "team", "blobs", "sha256");
    const names = await readdir(blobs, { recursive: true });
    const blob = names.find((n) => /[0-9a-f]{64}$/.test(n) && n.endsWith(sha256Hex("factors of a")));
    expect(blob).toBeDefined();
    await writeFile(path.join(blobs, blob ?? ""), "not the bytes");
    const bad: string[][] = [];
    const got = await getOrCompute(
      cacheDir("d"),
      remote("team"),
      request(KEY, "factors of a", { onRemoteBad: (_k, problems) => bad.push(problems) }),
    );
    expect(got.source).toBe("computed");
    expect(bad).toHaveLength(1);
    expect(bad[0].join()).toMatch(/sha256|bytes/);
    expect((await getOrCompute(cacheDir("e"), remote("team", "read"), request(KEY, undefined))).source).toBe("remote");
  });

  it("a server that is down is one warning and local work; with required it is a NetworkError", async () => {
    const warnings: string[] = [];
    const down = remote("team", "readwrite", warnings, "http://127.0.0.1:9");
    const first = await getOrCompute(cacheDir("f"), down, request(KEY, "factors of a"));
    expect(first.source).toBe("computed");
    await getOrCompute(cacheDir("f"), down, request(OTHER, "another", { force: true }));
    expect(down.unavailable).toMatch(/unreachable|refused|timed out/);
    expect(warnings.filter((w) => w.includes("continuing with the local cache only"))).toHaveLength(1);
    const required = remote("team", "readwrite", [], "http://127.0.0.1:9", true);
    await expect(getOrCompute(cacheDir("g"), required, request(KEY, "factors of a"))).rejects.toThrow(NetworkError);
  });
});
