/**
 * The file store on a real temp directory: layout, immutability, non-finite metrics, search
 * (also over damaged runs), bad input leaving the store untouched, and several processes writing
 * at once.
 */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Writable } from "node:stream";
import { BadParameterError, CorruptArtifactError, createLogger, MissingArtifactError } from "@ms/contracts";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runsCommand } from "./cli.js";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAGS } from "./tags.js";
import { createTracker } from "./tracker.js";
import type { Tracker } from "./types.js";
import { formatMeta, parseMeta } from "./meta-yaml.js";
import { recordUnclosedRuns, UNCLOSED_RUNS_FILE } from "./unclosed.js";
import { bundleForChild } from "./testing/bundle.js";

const exec = promisify(execFile);
let root: string;
let store: Tracker;

const temps: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

beforeEach(async () => {
  root = path.join(await tempDir("ms-fs-"), "mlruns");
  store = createTracker(root, { env: {} });
});

afterEach(async () => {
  for (const dir of temps.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        out[`${r}/`] = "";
        await walk(r);
      } else out[r] = await fs.readFile(path.join(dir, r), "utf8");
    }
  };
  await walk("");
  return out;
}

describe("FileStore layout", () => {
  it("tags every experiment it creates (Default included) so MLflow 3's UI opens it on runs", async () => {
    const exp = await store.getOrCreateExperiment("kind");
    const other = await store.createExperiment("kind 2");
    for (const id of ["0", exp.experimentId, other.experimentId]) {
      expect(await fs.readFile(path.join(root, id, "tags", EXPERIMENT_KIND_TAG), "utf8")).toBe(EXPERIMENT_KIND);
    }
  });

  it("creates the Default experiment 0 and MLflow's run layout", async () => {
    const exp = await store.getOrCreateExperiment("demo");
    expect((await store.getExperiment("0")).name).toBe("Default");
    const run = await store.startRun({ experimentId: exp.experimentId, runName: "r1", tags: { team: "x" } });
    const dir = path.join(root, exp.experimentId, run.runId);
    for (const sub of ["metrics", "params", "artifacts", "tags"]) expect((await fs.stat(path.join(dir, sub))).isDirectory()).toBe(true);
    const meta = parseMeta(await fs.readFile(path.join(dir, "meta.yaml"), "utf8"));
    expect(meta).toMatchObject({
      run_id: run.runId,
      run_name: "r1",
      experiment_id: exp.experimentId,
      status: 1,
      end_time: null,
      lifecycle_stage: "active",
    });
    expect(await fs.readFile(path.join(dir, `tags/${TAGS.runName}`), "utf8")).toBe("r1");
    expect(await fs.readFile(path.join(dir, "tags/team"), "utf8")).toBe("x");
    await store.logMetrics(run.runId, [
      { key: "loss", value: 0.5, step: 1, timestamp: 1000 },
      { key: "loss", value: 0.25, step: 2, timestamp: 2000 },
    ]);
    expect(await fs.readFile(path.join(dir, "metrics/loss"), "utf8")).toBe("1000 0.5 1\n2000 0.25 2\n");
    const ended = await store.endRun(run.runId, "KILLED", 5000);
    expect(ended.status).toBe("KILLED");
    expect(parseMeta(await fs.readFile(path.join(dir, "meta.yaml"), "utf8"))).toMatchObject({ status: 5, end_time: 5000 });
  });

  it("getOrCreateExperiment returns the same experiment and createExperiment refuses a duplicate name", async () => {
    const a = await store.getOrCreateExperiment("same");
    const b = await store.getOrCreateExperiment("same");
    expect(b.experimentId).toBe(a.experimentId);
    await expect(store.createExperiment("same")).rejects.toBeInstanceOf(BadParameterError);
    expect((await store.listExperiments()).filter((e) => e.name === "same")).toHaveLength(1);
  });

  it("round-trips NaN and infinities as MLflow writes them", async () => {
    const exp = await store.getOrCreateExperiment("nan");
    const run = await store.startRun({ experimentId: exp.experimentId });
    await store.logMetrics(run.runId, [
      { key: "m", value: Number.NaN, step: 0, timestamp: 1 },
      { key: "m", value: Number.POSITIVE_INFINITY, step: 1, timestamp: 1 },
      { key: "m", value: Number.NEGATIVE_INFINITY, step: 2, timestamp: 1 },
      { key: "m", value: 1e-20, step: 3, timestamp: 1 },
    ]);
    expect(await fs.readFile(path.join(root, exp.experimentId, run.runId, "metrics/m"), "utf8")).toBe(
      "1 nan 0\n1 inf 1\n1 -inf 2\n1 1e-20 3\n",
    );
    const values = (await store.getMetricHistory(run.runId, "m")).map((m) => m.value);
    expect(values[0]).toBeNaN();
    expect(values.slice(1)).toEqual([Infinity, -Infinity, 1e-20]);
    expect((await store.getRun(run.runId)).metrics.m.step).toBe(3);
  });

  it("copies a file or a directory into the run's artifacts", async () => {
    const exp = await store.getOrCreateExperiment("art");
    const run = await store.startRun({ experimentId: exp.experimentId });
    const src = await tempDir("ms-art-");
    await fs.mkdir(path.join(src, "d/sub"), { recursive: true });
    await fs.writeFile(path.join(src, "d/a.txt"), "A");
    await fs.writeFile(path.join(src, "d/sub/b.bin"), Buffer.from([1, 2, 3]));
    await fs.writeFile(path.join(src, "one.json"), "{}");
    await store.logArtifacts(run.runId, path.join(src, "d"), "model");
    await store.logArtifacts(run.runId, path.join(src, "one.json"));
    expect(await store.listArtifacts(run.runId)).toEqual([
      { path: "model/a.txt", isDir: false, fileSize: 1 },
      { path: "model/sub/b.bin", isDir: false, fileSize: 3 },
      { path: "one.json", isDir: false, fileSize: 2 },
    ]);
    await expect(store.logArtifacts(run.runId, path.join(src, "one.json"), "../escape")).rejects.toBeInstanceOf(BadParameterError);
    await expect(store.logArtifacts(run.runId, path.join(src, "missing"))).rejects.toThrow(/missing does not exist/);
  });
});

describe("FileStore bad input leaves the store as it was", () => {
  it("refuses to change a logged param, and writes nothing of the rejected batch", async () => {
    const exp = await store.getOrCreateExperiment("params");
    const run = await store.startRun({ experimentId: exp.experimentId });
    await store.logParams(run.runId, { lr: 0.1, "a/b": "x" });
    await store.logParams(run.runId, { lr: "0.1" }); // the same value again is fine
    const before = await snapshot(root);
    await expect(store.logParams(run.runId, { fresh: "1", lr: 0.2 })).rejects.toThrow(/param "lr".*already logged it as "0.1"/);
    await expect(store.logParams(run.runId, { fresh: "1", "a/b": "y" })).rejects.toThrow(/param "a\/b".*already logged it as "x"/);
    await expect(store.logParams(run.runId, { ok: "1", "bad:key": "x" })).rejects.toBeInstanceOf(BadParameterError);
    await expect(store.logParams(run.runId, { "../up": "x" })).rejects.toThrow(/must not start with '\.\.'/);
    await expect(store.logParams(run.runId, { "a/../b": "x" })).rejects.toThrow(/'\.\.' path segment/);
    await expect(store.logParams(run.runId, { long: "x".repeat(6001) })).rejects.toThrow(/over MLflow's limit of 6000/);
    await expect(store.setTags(run.runId, { t: "x".repeat(8001) })).rejects.toThrow(/over MLflow's limit of 8000/);
    await expect(store.logMetrics(run.runId, [{ key: "k".repeat(251), value: 1 }])).rejects.toThrow(/limit of 250/);
    await expect(
      store.logMetrics(run.runId, [
        { key: "ok", value: 1 },
        { key: "m", value: 1, step: 1.5 },
      ]),
    ).rejects.toThrow(/step must be an integer/);
    // @ts-expect-error a string where the type says number: the store checks values at run time too
    await expect(store.logMetrics(run.runId, [{ key: "m", value: "1" }])).rejects.toThrow(/value must be a number/);
    await expect(store.logParams(run.runId, { a: "clash" })).rejects.toThrow(/clashes with another key/);
    expect(await snapshot(root)).toEqual(before);
    expect((await store.getRun(run.runId)).params).toEqual({ lr: "0.1", "a/b": "x" });
  });

  it("writes nested keys of params, tags and metrics into their own directories", async () => {
    const exp = await store.getOrCreateExperiment("nested");
    const run = await store.startRun({ experimentId: exp.experimentId });
    await store.logParams(run.runId, { "p/q/r": "1" });
    await store.setTags(run.runId, { "t/u": "v" });
    await store.logMetrics(run.runId, [{ key: "m/n", value: 2, step: 0, timestamp: 5 }]);
    const dir = path.join(root, exp.experimentId, run.runId);
    expect(await fs.readFile(path.join(dir, "params/p/q/r"), "utf8")).toBe("1");
    expect(await fs.readFile(path.join(dir, "tags/t/u"), "utf8")).toBe("v");
    expect(await fs.readFile(path.join(dir, "metrics/m/n"), "utf8")).toBe("5 2 0\n");
    // A run directory another tool made without params/ still takes params.
    await fs.rm(path.join(dir, "params"), { recursive: true });
    await store.logParams(run.runId, { late: "x" });
    expect((await store.getRun(run.runId)).params).toEqual({ late: "x" });
  });

  it("accepts every character class MLflow allows in keys", async () => {
    const exp = await store.getOrCreateExperiment("keys");
    const run = await store.startRun({ experimentId: exp.experimentId });
    await store.logParams(run.runId, { "a-b_c.d e/f": "1", ünï: "2" });
    expect((await store.getRun(run.runId)).params).toEqual({ "a-b_c.d e/f": "1", ünï: "2" });
  });

  it("names a missing run and rejects an invalid run id before touching the disk", async () => {
    await expect(store.getRun("0123456789abcdef0123456789abcdef")).rejects.toBeInstanceOf(MissingArtifactError);
    await expect(store.getRun("../../etc")).rejects.toBeInstanceOf(BadParameterError);
  });

  it("skips a run directory whose creation was interrupted before its meta.yaml", async () => {
    const exp = await store.getOrCreateExperiment("crash");
    const run = await store.startRun({ experimentId: exp.experimentId, runName: "complete" });
    await fs.mkdir(path.join(root, exp.experimentId, "deadbeefdeadbeefdeadbeefdeadbeef/metrics"), { recursive: true });
    const page = await store.searchRuns({ experimentIds: [exp.experimentId] });
    expect(page.runs.map((r) => r.info.runId)).toEqual([run.runId]);
  });
});

describe("FileStore search over damaged runs", () => {
  it("skips and warns for a run with a truncated metric line or a bad meta.yaml; `ms runs ls` still lists the rest", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const watched = createTracker(root, { env: {}, logger: createLogger({ level: "warn", destination }) });
    const exp = await watched.getOrCreateExperiment("damaged");
    const good = await watched.startRun({ experimentId: exp.experimentId, runName: "good", startTime: 1000 });
    const cut = await watched.startRun({ experimentId: exp.experimentId, runName: "cut", startTime: 2000 });
    const badMeta = await watched.startRun({ experimentId: exp.experimentId, runName: "bad-meta", startTime: 3000 });
    await watched.logMetrics(good.runId, [{ key: "rmse", value: 0.9, step: 0, timestamp: 5 }]);
    await watched.logMetrics(cut.runId, [{ key: "rmse", value: 0.9, step: 0, timestamp: 5 }]);
    // A crash in the middle of an append: the last line lost its value and step.
    await fs.appendFile(path.join(root, exp.experimentId, cut.runId, "metrics/rmse"), "1700000000000 n");
    await fs.writeFile(path.join(root, exp.experimentId, badMeta.runId, "meta.yaml"), "run_id: 'unterminated\n");

    const page = await watched.searchRuns({ experimentIds: [exp.experimentId] });
    expect(page.runs.map((r) => r.info.runName)).toEqual(["good"]);
    // The page says what it left out and why, so a caller can say which run answers instead.
    expect((page.skipped ?? []).map((r) => r.runId).sort()).toEqual([cut.runId, badMeta.runId].sort());
    const warned = lines.filter((l) => l.level === 40).map((l) => String(l.msg));
    expect(warned).toHaveLength(2);
    expect(warned.find((m) => m.includes(cut.runId))).toMatch(/metrics\/rmse:2: /);
    expect(warned.find((m) => m.includes(badMeta.runId))).toMatch(/meta\.yaml/);
    // Reading that one run directly still fails, naming the file and line.
    await expect(watched.getRun(cut.runId)).rejects.toThrow(/metrics\/rmse:2/);

    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((c) => {
      out.push(String(c));
      return true;
    });
    try {
      expect(await runsCommand(["ls", "--experiment", "damaged", "--tracking-uri", root, "--json", "--log-level", "silent"])).toBe(0);
    } finally {
      spy.mockRestore();
      process.exitCode = 0;
    }
    expect((JSON.parse(out.join("")) as { runs: Array<{ runName: string }> }).runs.map((r) => r.runName)).toEqual(["good"]);
  });
});

describe("FileStore reads of damaged files", () => {
  it("a run's meta.yaml with an edited field is a CorruptArtifactError naming the file and the field", async () => {
    const exp = await store.getOrCreateExperiment("edited");
    const run = await store.startRun({ experimentId: exp.experimentId, runName: "r" });
    const file = path.join(root, exp.experimentId, run.runId, "meta.yaml");
    for (const [field, value] of [
      ["status", "9"],
      ["start_time", "soon"],
      ["lifecycle_stage", "gone"],
    ]) {
      const meta = parseMeta(await fs.readFile(file, "utf8"));
      await fs.writeFile(file, formatMeta({ ...meta, [field]: field === "status" ? Number(value) : value }));
      const error = await store.getRun(run.runId).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptArtifactError);
      expect((error as Error).message).toMatch(new RegExp(`^${escapeRegExp(file)}: ${field}: `));
      await fs.writeFile(file, formatMeta(meta));
    }
    expect((await store.getRun(run.runId)).info.runName).toBe("r");
  });

  it("a truncated meta.yaml is a CorruptArtifactError naming the file", async () => {
    const exp = await store.getOrCreateExperiment("truncated");
    const run = await store.startRun({ experimentId: exp.experimentId, runName: "it's" });
    const file = path.join(root, exp.experimentId, run.runId, "meta.yaml");
    const text = await fs.readFile(file, "utf8");
    // Cut inside the quoted run name.
    await fs.writeFile(file, text.slice(0, text.indexOf("run_name: ") + 13));
    const error = await store.endRun(run.runId, "FINISHED").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toContain(`cannot read ${file}:`);
  });

  it("a meta.yaml cut before its status is damaged, not a RUNNING run (MLflow always writes the status)", async () => {
    const exp = await store.getOrCreateExperiment("no-status");
    const run = await store.startRun({ experimentId: exp.experimentId, runName: "r" });
    await store.endRun(run.runId, "FINISHED");
    const file = path.join(root, exp.experimentId, run.runId, "meta.yaml");
    const text = await fs.readFile(file, "utf8");
    await fs.writeFile(file, text.slice(0, text.indexOf("status:")));
    const error = await store.getRun(run.runId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toMatch(new RegExp(`^${escapeRegExp(file)}: status: `));
    const page = await store.searchRuns({ experimentIds: [exp.experimentId] });
    expect(page.runs).toEqual([]);
    expect(page.skipped?.map((r) => r.runId)).toEqual([run.runId]);
  });

  it("a damaged unclosed-runs.json is replaced, keeping the entries that are runs", async () => {
    const file = path.join(await tempDir("ms-unclosed-"), UNCLOSED_RUNS_FILE);
    await fs.writeFile(file, JSON.stringify({ runs: [{ runId: "a", trackingUri: "u" }, { runId: 7 }] }));
    expect(await recordUnclosedRuns(file, [])).toEqual([{ runId: "a", trackingUri: "u" }]);
    await fs.writeFile(file, '{"runs": [{"runId": "a"');
    expect(await recordUnclosedRuns(file, [{ runId: "b", trackingUri: "u" }])).toEqual([{ runId: "b", trackingUri: "u" }]);
    expect(JSON.parse(await fs.readFile(file, "utf8"))).toEqual({ runs: [{ runId: "b", trackingUri: "u" }] });
  });
});

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("FileStore search", () => {
  it("filters by tag, param and status, newest first, paginated", async () => {
    const exp = await store.getOrCreateExperiment("search");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await store.startRun({
        experimentId: exp.experimentId,
        runName: `r${i}`,
        startTime: 1000 + i,
        tags: { parity: i % 2 ? "odd" : "even" },
      });
      await store.logParams(r.runId, { i: String(i) });
      if (i < 3) await store.endRun(r.runId, "FINISHED");
      ids.push(r.runId);
    }
    const all = await store.searchRuns({ experimentIds: [exp.experimentId] });
    expect(all.runs.map((r) => r.info.runName)).toEqual(["r4", "r3", "r2", "r1", "r0"]);
    expect(
      (await store.searchRuns({ experimentIds: [exp.experimentId], tags: { parity: "even" } })).runs.map((r) => r.info.runName),
    ).toEqual(["r4", "r2", "r0"]);
    expect((await store.searchRuns({ experimentIds: [exp.experimentId], params: { i: "3" } })).runs.map((r) => r.info.runId)).toEqual([
      ids[3],
    ]);
    expect((await store.searchRuns({ experimentIds: [exp.experimentId], status: "RUNNING" })).runs.map((r) => r.info.runName)).toEqual([
      "r4",
      "r3",
    ]);
    const p1 = await store.searchRuns({ experimentIds: [exp.experimentId], maxResults: 2 });
    const p2 = await store.searchRuns({ experimentIds: [exp.experimentId], maxResults: 2, pageToken: p1.nextPageToken });
    const p3 = await store.searchRuns({ experimentIds: [exp.experimentId], maxResults: 2, pageToken: p2.nextPageToken });
    expect([...p1.runs, ...p2.runs, ...p3.runs].map((r) => r.info.runName)).toEqual(["r4", "r3", "r2", "r1", "r0"]);
    expect(p3.nextPageToken).toBeUndefined();
    await expect(store.searchRuns({ experimentIds: [exp.experimentId], pageToken: "garbage" })).rejects.toBeInstanceOf(BadParameterError);
  });
});

describe("FileStore with several processes", () => {
  const bundles: string[] = [];
  afterAll(async () => {
    for (const b of bundles) await fs.rm(b, { force: true });
  });

  it("keeps every metric line whole when processes append to one run, and they share one experiment", async () => {
    const writer = await bundleForChild(path.join(import.meta.dirname, "testing/concurrent-writer.ts"), "concurrent-writer");
    bundles.push(writer);
    const exp = await store.getOrCreateExperiment("target");
    const run = await store.startRun({ experimentId: exp.experimentId, runName: "shared" });
    const writers = 4;
    const count = 2000;
    const results = await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        exec(process.execPath, [writer, root, run.runId, "shared/metric", String(count), "7", String(w + 1)]),
      ),
    );
    const children = results.map((r) => JSON.parse(r.stdout) as { experimentId: string; runId: string });
    expect(new Set(children.map((c) => c.experimentId)).size).toBe(1);
    expect((await store.listExperiments()).filter((e) => e.name === "concurrent")).toHaveLength(1);
    const text = await fs.readFile(path.join(root, exp.experimentId, run.runId, "metrics/shared/metric"), "utf8");
    const lines = text.trimEnd().split("\n");
    expect(lines).toHaveLength(writers * count);
    for (const line of lines) expect(line).toMatch(/^\d+ \d+ \d+$/);
    const history = await store.getMetricHistory(run.runId, "shared/metric");
    for (let w = 1; w <= writers; w++) {
      const mine = history.filter((m) => Math.floor(m.value / 1_000_000) === w).map((m) => m.step);
      expect(mine).toEqual(Array.from({ length: count }, (_, i) => i));
    }
    expect((await store.getRun(run.runId)).params).toEqual({ shared: "same-value" });
    const finished = await store.searchRuns({ experimentIds: [children[0].experimentId], status: "FINISHED" });
    expect(finished.runs.map((r) => r.info.runId).sort()).toEqual(children.map((c) => c.runId).sort());
  });
});

describe("FileStore reads of a missing root", () => {
  it("see an empty store and create nothing", async () => {
    const missing = path.join(root, "typo");
    const s = createTracker(missing, { env: {} });
    expect(await s.listExperiments()).toEqual([]);
    expect(await s.getExperimentByName("x")).toBeUndefined();
    await expect(s.getRun("0123456789abcdef0123456789abcdef")).rejects.toBeInstanceOf(MissingArtifactError);
    await expect(fs.stat(missing)).rejects.toThrow(/ENOENT/);
    await s.getOrCreateExperiment("x");
    expect((await s.listExperiments()).map((e) => e.name).sort()).toEqual(["Default", "x"]);
  });
});
