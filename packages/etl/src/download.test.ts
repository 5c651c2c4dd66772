/**
 * The download step against a loopback HTTP server that lays archives out like GroupLens
 * (`<base>/<name>.zip` with `<name>.zip.md5` beside it): good, wrong checksum, truncated, `../`
 * entries, links, 404, a server that hangs; plus the download cache and the local mirror; and the
 * bounds on everything a server controls: body sizes, a drip-feeding server, an abort signal, the
 * number of archive entries, partial files.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Writable } from "node:stream";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadParameterError, CorruptArtifactError, createLogger, InterruptedError, NetworkError } from "@ms/contracts";
import { cleanPartialDownloads, loadRawData, MOVIELENS_DATASETS } from "./datasets.js";
import { SMALL_CSV, tempDir } from "./__tests__/helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

const good = zipSync({ "ml-latest-small/ratings.csv": enc(SMALL_CSV), "ml-latest-small/README.txt": enc("license") });
const evil = zipSync({ "ml-latest-small/ratings.csv": enc(SMALL_CSV), "../escaped.txt": enc("gotcha") });
const absolute = zipSync({ "/tmp/ms-absolute-entry.txt": enc("gotcha"), "ml-latest-small/ratings.csv": enc(SMALL_CSV) });
const link = zipSync({ "ml-latest-small/ratings.csv": [enc("/etc/passwd"), { os: 3, attrs: (0o120777 << 16) >>> 0 }] });
const tenk = zipSync({ "ml-1m/ratings.dat": enc("1::1193::5::978300760\n1::661::3::978302109\n") });
const many = zipSync(
  Object.fromEntries([
    ["ml-latest-small/ratings.csv", enc(SMALL_CSV)],
    ...Array.from({ length: 5 }, (_, i) => [`ml-latest-small/extra-${i}.txt`, enc("x")]),
  ]),
);
const notZip = enc("this is not a zip archive at all\n".repeat(100));

interface Route {
  body?: Uint8Array;
  md5?: string;
  status?: number;
  truncate?: boolean;
  hang?: boolean;
  /** Send bytes forever without a Content-Length: the .md5 file, or the archive. */
  endlessMd5?: boolean;
  endless?: boolean;
  /** Announce this Content-Length, then send nothing. */
  announce?: number;
  /** One byte every 20 ms, forever: never idle, never done. */
  drip?: boolean;
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
  "/bigmd5/ml-latest-small.zip": { body: good, md5: md5(good), endlessMd5: true },
  "/nolength/ml-latest-small.zip": { body: good, md5: md5(good), endless: true },
  "/announced/ml-latest-small.zip": { body: good, md5: md5(good), announce: 3 * 1024 ** 3 },
  "/drip/ml-latest-small.zip": { body: good, md5: md5(good), drip: true },
  "/many/ml-latest-small.zip": { body: many, md5: md5(many) },
  "/unsigned/ml-broken.zip": { body: notZip },
};

/** Writes `piece` every `ms` until the client goes away. */
function stream(res: http.ServerResponse, piece: Uint8Array, ms: number): void {
  const timer = setInterval(() => {
    if (res.destroyed || res.writableEnded) clearInterval(timer);
    else res.write(piece);
  }, ms);
  res.on("close", () => clearInterval(timer));
}
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
    if (isMd5 && route.endlessMd5) {
      res.writeHead(200, { "content-type": "text/plain" });
      stream(res, enc(`${route.md5}  `.repeat(1000)), 1);
      return;
    }
    if (isMd5) {
      res.writeHead(200, { "content-type": "text/plain" }).end(`${route.md5}\n`);
      return;
    }
    if (route.endless) {
      res.writeHead(200, { "content-type": "application/zip" });
      stream(res, new Uint8Array(64 * 1024), 1);
      return;
    }
    if (route.announce) {
      res.writeHead(200, { "content-length": String(route.announce) });
      res.flushHeaders();
      return;
    }
    if (route.drip) {
      res.writeHead(200, { "content-length": String(route.body!.length * 1000) });
      stream(res, route.body!.subarray(0, 1), 20);
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
  const logger = createLogger({
    level: "info",
    destination: new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  });
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
    // A download record cut short, or with an edited field, is no record: the archive is fetched again.
    const [recordName] = (await readdir(path.join(cacheDir, "downloads"))).filter((f) => f.startsWith("url-"));
    const recordFile = path.join(cacheDir, "downloads", recordName);
    const text = await readFile(recordFile, "utf8");
    for (const damaged of [text.slice(0, text.length / 2), JSON.stringify({ ...JSON.parse(text), sha256: "../../elsewhere" })]) {
      await writeFile(recordFile, damaged);
      const again = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/ok` });
      expect(again).toMatchObject({ source: "download", digest: first.digest });
    }
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
    // Only the hanging server needs a short idle timeout; the others keep the default, so a loaded
    // machine that stalls for a moment still fails them for the reason under test.
    const idleTimeoutMs = route === "hang" ? 400 : undefined;
    const error = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/${route}`, idleTimeoutMs }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(pattern);
    const datasets = path.join(cacheDir, "datasets");
    expect(existsSync(datasets) ? await readdir(datasets) : []).toEqual([]);
    const downloads = path.join(cacheDir, "downloads");
    const kept = existsSync(downloads) ? await readdir(downloads) : [];
    // An archive is kept only once it verified and extracted; partial files never stay.
    expect(kept).toEqual([]);
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
    await expect(loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `http://127.0.0.1:${port}` })).rejects.toThrow(
      /ECONNREFUSED.*--dataset synthetic/,
    );
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

describe("download bounds", () => {
  async function failure(params: Partial<Parameters<typeof loadRawData>[0]>, ctx: Parameters<typeof loadRawData>[1] = {}) {
    const cacheDir = await tempDir();
    const error = await loadRawData({ dataset: "ml-latest-small", cacheDir, ...params }, ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    const downloads = path.join(cacheDir, "downloads");
    return { error: error as Error, kept: existsSync(downloads) ? await readdir(downloads) : [], cacheDir };
  }

  it("with progress on (a terminal), reports bytes and rate about twice a second", async () => {
    const { logger, lines } = capture();
    const { error } = await failure({ baseUrl: `${base}/drip`, idleTimeoutMs: 5_000, deadlineMs: 1_600 }, { logger, progress: true });
    expect(error).toBeInstanceOf(NetworkError);
    const reports = lines.map((l) => JSON.parse(l)).filter((r) => typeof r.MiBps === "number");
    // The first byte, then one report per half second of a 1.6 s transfer; without progress only the first.
    expect(reports.length).toBeGreaterThanOrEqual(2);
    expect(reports[0]).toMatchObject({ MiB: 0, ofMiB: expect.any(Number) });
    expect(reports.at(-1).msg).toMatch(/^download: \d+\.\d MiB \(\d+%\) at \d+\.\d MiB\/s$/);
    const quiet = capture();
    await failure({ baseUrl: `${base}/drip`, idleTimeoutMs: 5_000, deadlineMs: 1_600 }, { logger: quiet.logger });
    expect(quiet.lines.filter((l) => l.includes("MiBps"))).toHaveLength(1);
  });

  it("caps the .md5 body and names its URL", async () => {
    const { error, kept } = await failure({ baseUrl: `${base}/bigmd5` });
    expect(error).toBeInstanceOf(NetworkError);
    expect(error.message).toBe(
      `${base}/bigmd5/ml-latest-small.zip.md5: more than 4096 bytes; not what this file should hold, refusing to read further`,
    );
    expect(kept).toEqual([]);
  });

  it("caps an archive sent without Content-Length, and refuses one announced too large", async () => {
    const endless = await failure({ baseUrl: `${base}/nolength`, maxDownloadBytes: 2 ** 20 });
    expect(endless.error).toBeInstanceOf(NetworkError);
    expect(endless.error.message).toMatch(
      new RegExp(`^${base}/nolength/ml-latest-small\\.zip: more than 1048576 bytes \\(raise MS_MAX_DOWNLOAD_BYTES`),
    );
    expect(endless.kept).toEqual([]);
    const announced = await failure({ baseUrl: `${base}/announced` });
    expect(announced.error).toBeInstanceOf(NetworkError);
    expect(announced.error.message).toMatch(/3221225472 bytes announced, more than the limit of 2147483648/);
    process.env.MS_MAX_DOWNLOAD_BYTES = "100";
    try {
      const viaEnv = await failure({ baseUrl: `${base}/ok` });
      expect(viaEnv.error.message).toMatch(/more than the limit of 100;/);
      process.env.MS_MAX_DOWNLOAD_BYTES = "lots";
      const badEnv = await failure({ baseUrl: `${base}/ok` });
      expect(badEnv.error).toBeInstanceOf(BadParameterError);
      expect(badEnv.error.message).toMatch(/MS_MAX_DOWNLOAD_BYTES/);
    } finally {
      delete process.env.MS_MAX_DOWNLOAD_BYTES;
    }
  });

  it("gives up on a server that never stops sending a byte at a time, at the deadline", async () => {
    const { error, kept } = await failure({ baseUrl: `${base}/drip`, idleTimeoutMs: 5_000, deadlineMs: 300 });
    expect(error).toBeInstanceOf(NetworkError);
    expect(error.message).toBe(`${base}/drip/ml-latest-small.zip: not complete after 300 ms (the transfer deadline); timed out`);
    expect(kept).toEqual([]);
  });

  it("stops at once when its AbortSignal fires, and keeps nothing", async () => {
    const controller = new AbortController();
    const reason = new InterruptedError("interrupted by SIGINT");
    // No idle timeout or deadline could end this within the test's timeout: only the signal can.
    setTimeout(() => controller.abort(reason), 200);
    const { error, kept } = await failure(
      { baseUrl: `${base}/drip`, idleTimeoutMs: 600_000, deadlineMs: 600_000 },
      { signal: controller.signal },
    );
    expect(error).toBe(reason);
    expect(kept).toEqual([]);
    const already = await failure({ baseUrl: `${base}/ok` }, { signal: AbortSignal.abort() });
    expect(already.error).toBeInstanceOf(InterruptedError);
  }, 20_000);

  it("ms-download stops a transfer on Ctrl-C, exits 130 and leaves no partial file", async () => {
    const cacheDir = await tempDir();
    const child = spawn(
      process.execPath,
      [
        path.resolve(__dirname, "../dist/download-bin.js"),
        "--url",
        `${base}/drip/ml-latest-small.zip`,
        "--cache-dir",
        cacheDir,
        "--timeout",
        "600",
        "--log-level",
        "error",
      ],
      { stdio: "ignore" },
    );
    let done = false;
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => {
        done = true;
        resolve(code);
      }),
    );
    const downloads = path.join(cacheDir, "downloads");
    while (!done && !(existsSync(downloads) && (await readdir(downloads)).some((f) => f.startsWith(".partial-"))))
      await new Promise((r) => setTimeout(r, 10));
    expect(done, "ms-download ended before its partial file could be seen").toBe(false);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(await readdir(downloads)).toEqual([]);
  }, 20_000);

  it("caps the number of archive entries", async () => {
    const { error, kept } = await failure({ baseUrl: `${base}/many`, maxArchiveEntries: 5 });
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect(error.message).toMatch(/holds 6 entries, more than the limit of 5; refusing to extract/);
    expect(kept).toEqual([]);
    const cacheDir = await tempDir();
    expect((await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/many` })).source).toBe("download");
  });

  it("does not keep an unverified archive that fails to extract, so the next run downloads again", async () => {
    const cacheDir = await tempDir();
    const url = `${base}/unsigned/ml-broken.zip`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const before = hits.filter((h) => h === "/unsigned/ml-broken.zip").length;
      await expect(loadRawData({ dataset: "ignored", url, cacheDir })).rejects.toThrow(/not a readable zip archive/);
      expect(hits.filter((h) => h === "/unsigned/ml-broken.zip").length).toBe(before + 1);
      expect(await readdir(path.join(cacheDir, "downloads"))).toEqual([]);
    }
  });

  it("removes partial downloads of dead processes on the next download, and keeps live ones", async () => {
    const cacheDir = await tempDir();
    const downloads = path.join(cacheDir, "downloads");
    await mkdir(downloads);
    const dead = deadPid();
    await writeFile(path.join(downloads, `.partial-${dead}-1700000000000.zip`), "half");
    await writeFile(path.join(downloads, `.partial-${process.pid}-1700000000000-abcdef.zip`), "in progress here");
    const got = await loadRawData({ dataset: "ml-latest-small", cacheDir, baseUrl: `${base}/ok` });
    expect(got.source).toBe("download");
    expect((await readdir(downloads)).filter((f) => f.startsWith(".partial"))).toEqual([
      `.partial-${process.pid}-1700000000000-abcdef.zip`,
    ]);
  });

  it("cleanPartialDownloads (for ms cache gc) lists or removes dead processes' partial files only", async () => {
    const cacheDir = await tempDir();
    const downloads = path.join(cacheDir, "downloads");
    expect(await cleanPartialDownloads(cacheDir)).toEqual([]);
    await mkdir(downloads);
    const stale = path.join(downloads, `.partial-${deadPid()}-1700000000000-0a1b2c.zip`);
    await writeFile(stale, "half");
    await writeFile(path.join(downloads, `.partial-${process.pid}-1.zip`), "live");
    await writeFile(path.join(downloads, "sha256-abc.zip"), "kept archive");
    expect(await cleanPartialDownloads(cacheDir, { dryRun: true })).toEqual([stale]);
    expect(existsSync(stale)).toBe(true);
    expect(await cleanPartialDownloads(cacheDir)).toEqual([stale]);
    expect((await readdir(downloads)).sort()).toEqual([`.partial-${process.pid}-1.zip`, "sha256-abc.zip"]);
  });
});

/** The pid of a process that has exited (and, on a quiet machine, not been reused). */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}
