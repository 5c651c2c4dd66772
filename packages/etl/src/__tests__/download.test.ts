/**
 * The download step against a loopback HTTP server that lays archives out like GroupLens
 * (`<base>/<name>.zip` with `<name>.zip.md5` beside it): good, wrong checksum, truncated, `../`
 * entries, links, 404, a server that hangs; plus the download cache and the local mirror.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Writable } from "node:stream";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadParameterError, CorruptArtifactError, createLogger, NetworkError } from "@ms/contracts";
import { loadRawData, MOVIELENS_DATASETS } from "../datasets.js";
import { SMALL_CSV, tempDir } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

const good = zipSync({ "ml-latest-small/ratings.csv": enc(SMALL_CSV), "ml-latest-small/README.txt": enc("license") });
const evil = zipSync({ "ml-latest-small/ratings.csv": enc(SMALL_CSV), "../escaped.txt": enc("gotcha") });
const absolute = zipSync({ "/tmp/ms-absolute-entry.txt": enc("gotcha"), "ml-latest-small/ratings.csv": enc(SMALL_CSV) });
const link = zipSync({ "ml-latest-small/ratings.csv": [enc("/etc/passwd"), { os: 3, attrs: (0o120777 << 16) >>> 0 }] });
const tenk = zipSync({ "ml-1m/ratings.dat": enc("1::1193::5::978300760\n1::661::3::978302109\n") });

interface Route {
  body?: Uint8Array;
  md5?: string;
  status?: number;
  truncate?: boolean;
  hang?: boolean;
}
const routes: Record<string, Route> = {
  "/ok/ml-latest-small.zip": { body: good, md5: `MD5 (ml-latest-small.zip) = ${md5(good)}` },
  "/badsum/ml-latest-small.zip": { body: good, md5: `${"0".repeat(32)}  ml-latest-small.zip` },
  "/truncated/ml-latest-small.zip": { body: good, md5: md5(good), truncate: true },
  "/evil/ml-latest-small.zip": { body: evil, md5: md5(evil) },
  "/absolute/ml-latest-small.zip": { body: absolute, md5: md5(absolute) },
  "/link/ml-latest-small.zip": { body: link, md5: md5(link) },
  "/missing/ml-latest-small.zip": { status: 404 },
  "/hang/ml-latest-small.zip": { body: good, md5: md5(good), hang: true },
  "/other/ml-1m.zip": { body: tenk, md5: md5(tenk) },
};
const hits: string[] = [];
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? "";
    hits.push(url);
    const isMd5 = url.endsWith(".md5");
    const route = routes[isMd5 ? url.slice(0, -4) : url];
    if (!route || route.status === 404 || (isMd5 && !route.md5)) {
      res.writeHead(404).end("not found");
      return;
    }
    if (isMd5) {
      res.writeHead(200, { "content-type": "text/plain" }).end(`${route.md5}\n`);
      return;
    }
    if (route.hang) {
      res.writeHead(200, { "content-length": String(route.body!.length) });
      res.flushHeaders();
      return; // never sends a byte; the client must time out
    }
    res.writeHead(200, { "content-length": String(route.body!.length), "content-type": "application/zip" });
    if (route.truncate) {
      res.write(route.body!.subarray(0, route.body!.length >> 1), () => res.destroy());
      return;
    }
    res.end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: "info", destination: new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } }) });
  return { logger, lines };
}

describe("download", () => {
  it("downloads, verifies against the .md5 file, extracts, and costs nothing the second time", async () => {
    const cacheDir = await tempDir();
    const first = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/ok` });
    expect(first.source).toBe("download");
    expect(await readFile(first.ratingsFile, "utf8")).toBe(SMALL_CSV);
    expect(first.digest).toBe(`sha256:${createHash("sha256").update(SMALL_CSV).digest("hex")}`);
    const archives = await readdir(path.join(cacheDir, "downloads"));
    expect(archives).toContain(`sha256-${createHash("sha256").update(good).digest("hex")}.zip`);
    const before = hits.length;
    const second = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/ok` });
    expect(hits.length).toBe(before);
    expect(second).toMatchObject({ source: "cache", ratingsFile: first.ratingsFile, digest: first.digest });
  });

  it("takes any archive by URL and finds the ratings file in it", async () => {
    const cacheDir = await tempDir();
    const got = await loadRawData({ dataset: "ignored", url: `${base}/other/ml-1m.zip`, cacheDir });
    expect(path.basename(got.ratingsFile)).toBe("ratings.dat");
    expect(got.name).toBe("ml-1m");
  });

  const failures: [string, string, new (...a: never[]) => Error, RegExp][] = [
    ["a wrong checksum", "badsum", CorruptArtifactError, /checksum mismatch/],
    ["a truncated archive", "truncated", NetworkError, /truncated|terminated|download failed/],
    ["an entry with '..'", "evil", CorruptArtifactError, /"\.\.\/escaped\.txt" has a '\.\.' segment/],
    ["an absolute entry", "absolute", CorruptArtifactError, /is an absolute path/],
    ["a symbolic link", "link", CorruptArtifactError, /symbolic link/],
    ["a 404", "missing", NetworkError, /HTTP 404/],
    ["a server that hangs", "hang", NetworkError, /timed out/],
  ];
  it.each(failures)("rejects %s and keeps nothing of it", async (_name, route, type, pattern) => {
    const cacheDir = await tempDir();
    const error = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/${route}`, idleTimeoutMs: 400 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(pattern);
    const datasets = path.join(cacheDir, "datasets");
    expect(existsSync(datasets) ? await readdir(datasets) : []).toEqual([]);
    const downloads = path.join(cacheDir, "downloads");
    const kept = existsSync(downloads) ? await readdir(downloads) : [];
    // A verified archive may stay (it is content-addressed); partial files never do.
    expect(kept.filter((f) => f.startsWith(".partial"))).toEqual([]);
    if (route !== "evil" && route !== "absolute" && route !== "link") expect(kept).toEqual([]);
    expect(existsSync(path.join(path.dirname(cacheDir), "escaped.txt"))).toBe(false);
    expect(existsSync("/tmp/ms-absolute-entry.txt")).toBe(false);
  });

  it("trusts the published .md5 over a kept digest, with a warning", async () => {
    const cacheDir = await tempDir();
    const { logger, lines } = capture();
    const catalog = { "ml-latest-small": { ...MOVIELENS_DATASETS["ml-latest-small"], md5: "f".repeat(32) } };
    const got = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/ok`, catalog }, { logger });
    expect(got.source).toBe("download");
    expect(lines.join("")).toMatch(/trusting the \.md5 file/);
  });

  it("uses a local mirror instead of downloading", async () => {
    const cacheDir = await tempDir();
    const mirror = await tempDir();
    await mkdir(path.join(mirror, "ml-latest-small"));
    await writeFile(path.join(mirror, "ml-latest-small", "ratings.csv"), SMALL_CSV);
    const before = hits.length;
    const got = await loadRawData({ dataset: "ml-latest-small", cacheDir, dataDir: mirror, baseUrl: `${base}/missing` });
    expect(hits.length).toBe(before);
    expect(got).toMatchObject({ source: "mirror", ratingsFile: path.join(mirror, "ml-latest-small", "ratings.csv") });
  });

  it("says what to do when offline, and names unknown datasets", async () => {
    const cacheDir = await tempDir();
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `http://127.0.0.1:${port}` })).rejects.toThrow(/ECONNREFUSED.*--dataset synthetic/);
    await expect(loadRawData({ dataset: "ml-99m", cacheDir })).rejects.toThrow(BadParameterError);
    await expect(loadRawData({ dataset: "ml-99m", cacheDir })).rejects.toThrow(/known: ml-latest-small, ml-100k/);
  });

  it("generates the synthetic dataset once and reuses it", async () => {
    const cacheDir = await tempDir();
    const a = await loadRawData({ dataset: "synthetic", cacheDir, rows: 5000, seed: 9 });
    const b = await loadRawData({ dataset: "synthetic", cacheDir, rows: 5000, seed: 9 });
    expect(a.digest).toBe(b.digest);
    expect(a.ratingsFile).toBe(b.ratingsFile);
    const text = await readFile(a.ratingsFile, "utf8");
    expect(text.trimEnd().split("\n")).toHaveLength(5001);
  });
});
