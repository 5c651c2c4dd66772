/**
 * S3RemoteStore against a hostile or broken remote, on a real s3proxy (127.0.0.1, started here and
 * stopped after), through @ms/cache's session: a blob body that stalls halfway (a loopback proxy
 * sends half and goes silent) is given up within the idle bound; a blob larger than its record and
 * a record over 1 MiB are damage, stopped before they are read; a full local disk while pulling is
 * a StorageError (exit 8), not a network failure; an entry whose manifest or claims are not those
 * of its key is refused; and with a signing key only signed records are served.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { CacheStore, MAX_RECORD_BYTES, cacheKey, openSession, pullEntries, type GetOrComputeRequest } from "@ms/cache";
import { BadParameterError, EXIT_CODES, NetworkError, StorageError, createLogger, exitCodeFor, writeManifest } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3proxy, type S3proxyServer } from "../../../tools/s3proxy/server.mjs";
import { startStallProxy } from "../../../tools/s3proxy/stall-proxy.mjs";
import { S3RemoteStore, type S3RemoteStoreOptions } from "./s3-store.js";

let s3: S3proxyServer;
let root: string;
const claim = (rank: number) => ({ version: "0", codeDigest: "sha256:c", params: { rank }, inputs: {} });
const keyOf = (rank: number) => cacheKey({ step: "als", ...claim(rank) });

beforeAll(async () => {
  s3 = await startS3proxy();
  root = await mkdtemp(path.join(tmpdir(), "ms-cache-s3-hostile-"));
}, 15 * 60_000);

afterAll(async () => {
  await s3?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

let caches = 0;
const freshCache = () => path.join(root, `cache-${++caches}`);

function remote(prefix: string, options: Partial<S3RemoteStoreOptions> = {}, warnings: string[] = []): S3RemoteStore {
  const destination = new Writable({
    write(chunk, _enc, done) {
      warnings.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: "warn", destination });
  return new S3RemoteStore({ url: `s3://${s3.bucket}/${prefix}`, env: s3.env, logger, ...options });
}

/** The request of the result of `rank`, whose compute writes `content` (undefined: it must not run). */
function request(rank: number, content: string | undefined, over: Partial<GetOrComputeRequest> = {}): GetOrComputeRequest {
  const key = keyOf(rank);
  return {
    key,
    step: "als",
    info: { ...claim(rank), producedByRun: "run-1" },
    async compute(dir) {
      if (content === undefined) throw new Error("computed, but a remote hit was expected");
      await mkdir(dir);
      await writeFile(path.join(dir, "user_factors.parquet"), content);
      await writeManifest(dir, {
        kind: "factors",
        files: ["user_factors.parquet"],
        params: { rank },
        metrics: {},
        details: {},
        producedBy: { step: "als", version: "0" },
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

const recordFile = (prefix: string, key: string) => path.join(s3.bucketDir, prefix, "entries", `${key}.json`);
const blobFile = (prefix: string, sha: string) => path.join(s3.bucketDir, prefix, "blobs", "sha256", sha.slice(0, 2), sha);
type Rec = { key: string; entry: Record<string, unknown>; manifest: Record<string, unknown>; files: { path: string; sha256: string }[] };
const readRecord = async (prefix: string, key: string) => JSON.parse(await readFile(recordFile(prefix, key), "utf8")) as Rec;

describe("a stalled, oversized or full transfer", () => {
  it("a blob body that stalls halfway is given up within the idle bound: one warning and local work; required, a NetworkError", async () => {
    await getOrCompute(freshCache(), remote("stall"), request(4, "x".repeat(200_000)));
    const proxy = await startStallProxy(s3.endpoint);
    try {
      const warnings: string[] = [];
      const store = remote("stall", { endpoint: proxy.endpoint, timeoutMs: 1000 }, warnings);
      const started = performance.now();
      const got = await getOrCompute(freshCache(), store, request(4, "x".repeat(200_000)));
      expect(got.source).toBe("computed");
      expect(performance.now() - started).toBeLessThan(15_000);
      expect(proxy.stalled()).toBeGreaterThan(0);
      expect(store.unavailable).toMatch(/timed out while downloading .*no byte for 1000 ms/);
      expect(warnings.filter((w) => w.includes("continuing with the local cache only"))).toHaveLength(1);

      const required = remote("stall", { endpoint: proxy.endpoint, timeoutMs: 1000, required: true });
      const cache = freshCache();
      const pulled = pullEntries({ cacheDir: cache, remote: required, keys: [keyOf(4)] });
      await expect(pulled).rejects.toThrow(NetworkError);
      await expect(pulled).rejects.toThrow(/timed out/);
      expect(await readdir(path.join(cache, "tmp"))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it("a blob larger than its record is damage, refused before its bytes are read", async () => {
    await getOrCompute(freshCache(), remote("big"), request(4, "factors"));
    const rec = await readRecord("big", keyOf(4));
    const sha = rec.files.find((f) => f.path === "user_factors.parquet")?.sha256 ?? "";
    await writeFile(blobFile("big", sha), Buffer.alloc(30 << 20, 1));
    const bad: string[][] = [];
    const store = remote("big", { mode: "read" });
    const got = await getOrCompute(freshCache(), store, request(4, "factors", { onRemoteBad: (_k, p) => bad.push(p) }));
    expect(got.source).toBe("computed");
    expect(bad).toEqual([[expect.stringMatching(`${sha} \\(user_factors.parquet\\): ${30 << 20} bytes, the record says 7`)]]);
    expect(store.stats.bytesDown).toBeLessThan(1 << 20);
  });

  it("an entry record over 1 MiB is damage, not read into memory", async () => {
    await getOrCompute(freshCache(), remote("huge"), request(4, "factors"));
    const file = recordFile("huge", keyOf(4));
    const text = await readFile(file, "utf8");
    // Still a valid record: 2 MiB of white space before its last brace.
    await writeFile(file, `${text.trimEnd().slice(0, -1)}${" ".repeat(2 * MAX_RECORD_BYTES)}}\n`);
    const bad: string[][] = [];
    const store = remote("huge", { mode: "read" });
    const got = await getOrCompute(freshCache(), store, request(4, "factors", { onRemoteBad: (_k, p) => bad.push(p) }));
    expect(got.source).toBe("computed");
    expect(bad.join()).toMatch(`more than ${MAX_RECORD_BYTES}`);
    expect(store.stats.bytesDown).toBeLessThan(MAX_RECORD_BYTES);
  });

  it("a full local disk while pulling is a StorageError (exit 8), not a remote failure", async (ctx) => {
    await getOrCompute(freshCache(), remote("full"), request(4, "y".repeat(1 << 20)));
    const disk = path.join(root, "small-disk");
    await mkdir(disk);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", disk], { stdio: "pipe" });
    } catch (error) {
      ctx.skip(`cannot mount a tmpfs here (needs root): ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`);
    }
    try {
      const pulled = pullEntries({ cacheDir: disk, remote: remote("full", { mode: "read", required: true }), keys: [keyOf(4)] });
      await expect(pulled).rejects.toThrow(StorageError);
      await expect(pulled).rejects.toThrow(/ENOSPC/);
      expect(exitCodeFor(await pulled.catch((e: unknown) => e))).toBe(EXIT_CODES.STORAGE);
      expect(await readdir(path.join(disk, "tmp"))).toEqual([]);
    } finally {
      execFileSync("umount", [disk]);
    }
  });
});

describe("a poisoned shared cache", () => {
  it("the record of other parameters copied under a key is refused once and recomputed", async () => {
    await getOrCompute(freshCache(), remote("poison"), request(5, "factors of rank 5"));
    const rec = await readRecord("poison", keyOf(5));
    await writeFile(recordFile("poison", keyOf(4)), JSON.stringify({ ...rec, key: keyOf(4), entry: { ...rec.entry, key: keyOf(4) } }));
    const bad: string[][] = [];
    const got = await getOrCompute(
      freshCache(),
      remote("poison", { mode: "read" }),
      request(4, "rank 4", { onRemoteBad: (_k, p) => bad.push(p) }),
    );
    expect(got.source).toBe("computed");
    expect(bad.join()).toMatch(`make the key ${keyOf(5)}, not ${keyOf(4)}`);
  });

  it("a manifest.json blob of other parameters behind a record that claims the key's is refused, and not left in the cache", async () => {
    await getOrCompute(freshCache(), remote("poison2"), request(5, "factors of rank 5"));
    const rec = await readRecord("poison2", keyOf(5));
    // The record says rank 4 everywhere; the manifest.json it lists (rank 5's) says rank 5.
    const forged = {
      ...rec,
      key: keyOf(4),
      entry: { ...rec.entry, key: keyOf(4), params: { rank: 4 } },
      manifest: { ...rec.manifest, params: { rank: 4 } },
    };
    await writeFile(recordFile("poison2", keyOf(4)), JSON.stringify(forged));
    const bad: string[][] = [];
    const cache = freshCache();
    const got = await getOrCompute(
      cache,
      remote("poison2", { mode: "read" }),
      request(4, "rank 4", { onRemoteBad: (_k, p) => bad.push(p) }),
    );
    expect(got.source).toBe("computed");
    expect(bad.join()).toMatch(`its manifest says "rank"=5, the key's parameter is 4`);
    expect(await readFile(path.join(got.dir, "user_factors.parquet"), "utf8")).toBe("rank 4");
  });
});

describe("signed records", () => {
  let keys: { writer: string; reader: string };

  beforeAll(async () => {
    const pair = generateKeyPairSync("ed25519");
    keys = { writer: path.join(root, "writer.pem"), reader: path.join(root, "reader.pub") };
    await writeFile(keys.writer, pair.privateKey.export({ type: "pkcs8", format: "pem" }));
    await writeFile(keys.reader, pair.publicKey.export({ type: "spki", format: "pem" }));
  });

  it("a writer's signed entry is served to a reader with the public key; an unsigned one is refused and recomputed", async () => {
    await getOrCompute(freshCache(), remote("signed", { signingKey: keys.writer }), request(4, "signed factors"));
    const reader = remote("signed", { signingKey: keys.reader });
    expect(reader.canWrite).toBe(false);
    expect((await getOrCompute(freshCache(), reader, request(4, undefined))).source).toBe("remote");

    await getOrCompute(freshCache(), remote("unsigned"), request(4, "unsigned factors"));
    const bad: string[][] = [];
    const got = await getOrCompute(
      freshCache(),
      remote("unsigned", { signingKey: keys.reader }),
      request(4, "signed factors", { onRemoteBad: (_k, p) => bad.push(p) }),
    );
    expect(got.source).toBe("computed");
    expect(bad.join()).toMatch(/is not signed/);
  });

  it("a reader holding the public key only cannot push (ms cache push): a bad parameter", async () => {
    const cache = freshCache();
    await getOrCompute(cache, remote("local-only", { mode: "read" }), request(4, "factors"));
    const session = openSession(new CacheStore(cache), { remote: remote("pub-push", { mode: "write", signingKey: keys.reader }) });
    try {
      await expect(session.pushEntry(keyOf(4))).rejects.toThrow(BadParameterError);
    } finally {
      await session.close();
    }
  });
});
