/**
 * What the cache reads back is validated: an entry.json, a lock or a lease that does not match its
 * schema is named with its file and field (a damaged entry, a lock judged half-written), never
 * cast; the layout keeps the directory names of earlier versions; gc runs the cleaners it is given.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CorruptArtifactError, parseJsonText, writeManifest } from "@ms/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CACHE_PLACES, cacheLayout } from "./layout.js";
import { gcCache } from "./maintenance.js";
import { EntryInfoSchema, type EntryInfo } from "./schemas.js";
import { CacheStore } from "./store.js";

const KEY = "d".repeat(64);
let root: string;
let store: CacheStore;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-schemas-"));
  store = new CacheStore(path.join(root, "cache"));
  await store.ensureLayout();
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function published(): Promise<EntryInfo> {
  const temp = store.tempPath("etl");
  await mkdir(temp.dir);
  await writeFile(path.join(temp.dir, "data.bin"), "hello");
  await writeManifest(temp.dir, {
    kind: "ratings",
    files: ["data.bin"],
    params: {},
    metrics: {},
    details: {},
    producedBy: { step: "etl", version: "0" },
  });
  const now = new Date().toISOString();
  const info = {
    key: KEY,
    step: "etl",
    version: "0",
    codeDigest: "sha256:x",
    params: {},
    inputs: {},
    outputDigest: "",
    createdAt: now,
    lastUsedAt: now,
    producedByRun: null,
  };
  return (await store.publishEntry(temp.dir, info)).entry;
}

describe("entry.json", () => {
  it("a field of the wrong type makes the entry damaged, naming the file and the field", async () => {
    const entry = await published();
    expect((await store.checkEntry(KEY)).status).toBe("hit");
    const file = path.join(store.entryDir(KEY), "entry.json");
    await writeFile(file, JSON.stringify({ ...entry, producedByRun: 42 }));
    const check = await store.checkEntry(KEY);
    expect(check.status).toBe("damaged");
    expect(check.status === "damaged" && check.problems.join("\n")).toContain(`${file}: producedByRun`);
    expect(await store.readEntryInfo(KEY)).toBeUndefined();
  });

  it("a truncated one is damaged too, and entries of earlier versions without the newer fields still parse", async () => {
    const entry = await published();
    const file = path.join(store.entryDir(KEY), "entry.json");
    await writeFile(file, JSON.stringify(entry).slice(0, 40));
    const check = await store.checkEntry(KEY);
    expect(check.status === "damaged" && check.problems.join("\n")).toContain(`${file}: not valid JSON`);
    expect(parseJsonText(JSON.stringify({ key: KEY, step: "etl" }), EntryInfoSchema, file)).toMatchObject({
      key: KEY,
      step: "etl",
      params: {},
      producedByRun: null,
    });
  });

  it("parseJsonText with the entry schema throws a CorruptArtifactError naming file and field", () => {
    expect(() => parseJsonText(JSON.stringify({ key: 1, step: "etl" }), EntryInfoSchema, "/x/entry.json")).toThrow(CorruptArtifactError);
    expect(() => parseJsonText(JSON.stringify({ key: 1, step: "etl" }), EntryInfoSchema, "/x/entry.json")).toThrow(/\/x\/entry\.json: key/);
  });
});

describe("locks and leases", () => {
  it("a lock file that does not match its schema is half-written: named with its field, stale once old", async () => {
    await writeFile(store.lockFile(KEY), JSON.stringify({ pid: "seven", hostname: "h" }));
    const holder = await store.lockHolder(KEY);
    expect(holder?.state.reason).toContain(`${store.lockFile(KEY)}: pid`);
    expect(holder?.state.stale).toBe(false);
  });

  it("a lease whose keys are not strings protects nothing", async () => {
    await mkdir(store.leases, { recursive: true });
    await writeFile(
      path.join(store.leases, `${process.pid}-0.lease`),
      JSON.stringify({ pid: process.pid, hostname: "h", startedAt: "x", keys: [1, 2] }),
    );
    expect((await store.liveLeases()).keys.size).toBe(0);
  });
});

describe("the layout", () => {
  it("keeps the directory names of earlier versions", () => {
    const layout = cacheLayout("/c");
    expect(Object.values(CACHE_PLACES).sort()).toEqual([
      "datasets",
      "digests",
      "downloads",
      "etl-scans",
      "leases",
      "locks",
      "meta",
      "objects",
      "reports",
      "spark-staging",
      "tmp",
      "tracking",
    ]);
    expect([layout.objects, layout.downloads, layout.sparkStaging]).toEqual(["/c/objects", "/c/downloads", "/c/spark-staging"]);
    expect(store.objects).toBe(path.join(root, "cache", "objects"));
  });
});

describe("gc cleaners", () => {
  it("runs each cleaner with the cache root and dry-run flag, and reports what it removed under its name", async () => {
    const calls: { root: string; dryRun: boolean }[] = [];
    const cleaner = {
      name: "downloads",
      what: "partial downloads",
      clean: async (cacheRoot: string, o: { dryRun: boolean }) => {
        calls.push({ root: cacheRoot, dryRun: o.dryRun });
        return ["/gone"];
      },
    };
    const report = await gcCache(store.root, { dryRun: true, cleaners: [cleaner] });
    expect(calls).toEqual([{ root: store.root, dryRun: true }]);
    expect(report.leftovers.downloads).toEqual(["/gone"]);
    expect((await gcCache(store.root, {})).leftovers.downloads).toBeUndefined();
  });
});
