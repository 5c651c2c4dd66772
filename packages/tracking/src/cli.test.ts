/**
 * `ms-runs` on a local store: ls, show, compare, --json documents and usage errors.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { runsCommand } from "./cli.js";
import { TAGS } from "./tags.js";
import { createTracker } from "./tracker.js";

let root: string;
let ids: { a: string; b: string; parent: string };

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, "write").mockImplementation((c) => {
    out.push(String(c));
    return true;
  });
  const e = vi.spyOn(process.stderr, "write").mockImplementation((c) => {
    err.push(String(c));
    return true;
  });
  try {
    const code = await runsCommand([...argv, "--tracking-uri", root, "--log-level", "silent"]);
    return { code, stdout: out.join(""), stderr: err.join("") };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => {
  process.exitCode = 0;
});

afterAll(async () => {
  await fs.rm(path.dirname(root), { recursive: true, force: true });
});

beforeAll(async () => {
  root = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "ms-cli-")), "mlruns");
  const store = createTracker(root, { env: {} });
  const exp = await store.getOrCreateExperiment("movies");
  const other = await store.getOrCreateExperiment("other");
  const parent = await store.startRun({ experimentId: exp.experimentId, runName: "pipeline", startTime: 1000 });
  const a = await store.startRun({ experimentId: exp.experimentId, runName: "als-a", parentRunId: parent.runId, startTime: 2000 });
  const b = await store.startRun({ experimentId: exp.experimentId, runName: "als-b", parentRunId: parent.runId, startTime: 3000 });
  await store.startRun({ experimentId: other.experimentId, runName: "elsewhere", startTime: 4000 });
  await store.logParams(a.runId, { rank: 8, lr: 0.1 });
  await store.logParams(b.runId, { rank: 16 });
  await store.logMetrics(a.runId, [
    { key: "rmse", value: 0.9, step: 0 },
    { key: "rmse", value: 0.85, step: 1 },
  ]);
  await store.logMetrics(b.runId, [{ key: "rmse", value: Number.POSITIVE_INFINITY, step: 0 }]);
  await store.endRun(a.runId, "FINISHED");
  ids = { a: a.runId, b: b.runId, parent: parent.runId };
});

describe("ms-runs", () => {
  it("ls lists runs of one experiment newest first, or of all", async () => {
    const one = await run(["ls", "--experiment", "movies", "--json"]);
    expect(one.code).toBe(0);
    const doc = JSON.parse(one.stdout) as { runs: Array<{ runName: string; parentRunId: string | null; status: string }> };
    expect(doc.runs.map((r) => [r.runName, r.parentRunId, r.status])).toEqual([
      ["als-b", ids.parent, "RUNNING"],
      ["als-a", ids.parent, "FINISHED"],
      ["pipeline", null, "RUNNING"],
    ]);
    const all = await run(["ls"]);
    expect(all.stdout.split("\n")[0]).toMatch(/^RUN ID\s+EXPERIMENT\s+NAME\s+STATUS/);
    expect(all.stdout).toContain("elsewhere");
    expect(all.stdout.indexOf("elsewhere")).toBeLessThan(all.stdout.indexOf("pipeline"));
  });

  it("show prints one run with params, latest metrics and tags", async () => {
    const r = await run(["show", ids.a, "--json"]);
    const doc = JSON.parse(r.stdout) as {
      run: { params: Record<string, string>; metrics: Record<string, { value: number; step: number }>; tags: Record<string, string> };
    };
    expect(doc.run.params).toEqual({ rank: "8", lr: "0.1" });
    expect(doc.run.metrics.rmse).toMatchObject({ value: 0.85, step: 1 });
    expect(doc.run.tags[TAGS.parent]).toBe(ids.parent);
    const text = await run(["show", ids.b]);
    expect(text.stdout).toContain("rmse = Infinity (step 0)");
  });

  it("compare puts params and latest metrics side by side", async () => {
    const r = await run(["compare", ids.a, ids.b, "--json"]);
    expect(JSON.parse(r.stdout)).toEqual({
      runs: [
        { runId: ids.a, runName: "als-a", status: "FINISHED" },
        { runId: ids.b, runName: "als-b", status: "RUNNING" },
      ],
      params: { lr: ["0.1", null], rank: ["8", "16"] },
      metrics: { rmse: [0.85, "Infinity"] },
    });
    const text = await run(["compare", ids.a, ids.b]);
    expect(text.stdout).toMatch(/param rank\s+8\s+16/);
  });

  it("exits non-zero with a clear message on bad usage", async () => {
    const unknown = await run(["frobnicate", "--json"]);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout).error.message).toMatch(/unknown command "frobnicate"/);
    const missingExp = await run(["ls", "--experiment", "nope"]);
    expect(missingExp.code).toBe(2);
    expect(missingExp.stderr).toMatch(/no experiment named "nope"/);
    const missingRun = await run(["show", "0123456789abcdef0123456789abcdef"]);
    expect(missingRun.code).toBe(4);
    expect(missingRun.stderr).toMatch(/run 0123456789abcdef0123456789abcdef does not exist/);
    expect((await run([])).code).toBe(2);
  });
});
