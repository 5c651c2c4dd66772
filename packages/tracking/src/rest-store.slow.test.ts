/**
 * The REST store against a real `mlflow server` (SQLite backend, served artifacts) started by
 * the slow project's globalSetup: runs logged through our client and read back by MLflow's
 * Python client field by field, search, immutable params, and a server that goes away mid-run
 * (one retry budget per tracker, the run left open reported by `unclosedRuns()`).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { BadParameterError, recordOf, silentLogger, TrackingUnavailableError } from "@ms/contracts";
import { afterAll, describe, expect, inject, it, vi } from "vitest";
import { runsCommand } from "./cli.js";
import { createTracker } from "./tracker.js";
import * as v from "valibot";
import { pythonJson, pythonRead } from "./testing/mlflow-python.js";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG } from "./tags.js";
import { expectPythonSeesScenario, logScenario } from "./testing/scenario.js";

const url = inject("mlflowUrl");
const venv = inject("mlflowVenv");
const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 20_000 } });
const unique = `${process.pid}-${Date.now()}`;

describe("REST store against mlflow server", () => {
  it("creates experiments with mlflow.experimentKind, as MLflow's Python client reads it", async () => {
    const exp = await tracker.getOrCreateExperiment(`kind ${unique}`);
    const tags = await pythonJson(
      venv,
      recordOf(v.string()),
      "import json,sys; from mlflow import MlflowClient; print(json.dumps(MlflowClient(sys.argv[1]).get_experiment(sys.argv[2]).tags))",
      [url, exp.experimentId],
    );
    expect(tags[EXPERIMENT_KIND_TAG]).toBe(EXPERIMENT_KIND);
  });

  it("logs nested runs that MLflow's Python client reads back field by field", async () => {
    const s = await logScenario(tracker, `rest scenario ${unique}`);
    await expectPythonSeesScenario(tracker, s, await pythonRead(venv, url, s.experimentName), { sqlInfinity: true });
  });

  it("searches by experiment, tag, param and status, newest first, paginated", async () => {
    const exp = await tracker.getOrCreateExperiment(`search ${unique}`);
    expect((await tracker.getOrCreateExperiment(`search ${unique}`)).experimentId).toBe(exp.experimentId);
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await tracker.startRun({
        experimentId: exp.experimentId,
        runName: `r${i}`,
        startTime: 1_700_000_000_000 + i,
        tags: { parity: i % 2 ? "odd" : "even" },
      });
      await tracker.logParams(r.runId, { i: String(i), quote: "it's" });
      if (i % 2 === 0) await tracker.endRun(r.runId, "FINISHED");
      names.push(r.runId);
    }
    const search = (o: Partial<Parameters<typeof tracker.searchRuns>[0]>) =>
      tracker.searchRuns({ experimentIds: [exp.experimentId], ...o }).then((p) => p.runs.map((r) => r.info.runName));
    expect(await search({})).toEqual(["r3", "r2", "r1", "r0"]);
    expect(await search({ tags: { parity: "odd" } })).toEqual(["r3", "r1"]);
    expect(await search({ params: { i: "2", quote: "it's" } })).toEqual(["r2"]);
    expect(await search({ status: "FINISHED" })).toEqual(["r2", "r0"]);
    const p1 = await tracker.searchRuns({ experimentIds: [exp.experimentId], maxResults: 3 });
    const p2 = await tracker.searchRuns({ experimentIds: [exp.experimentId], maxResults: 3, pageToken: p1.nextPageToken });
    expect([...p1.runs, ...p2.runs].map((r) => r.info.runName)).toEqual(["r3", "r2", "r1", "r0"]);
    expect(p2.nextPageToken).toBeUndefined();
  });

  it("refuses to change a param before sending anything, and the server keeps the first value", async () => {
    const exp = await tracker.getOrCreateExperiment(`params ${unique}`);
    const run = await tracker.startRun({ experimentId: exp.experimentId, runName: "p" });
    await tracker.logParams(run.runId, { lr: 0.1 });
    const many: Record<string, string> = {};
    for (let i = 0; i < 150; i++) many[`k${i}`] = "x";
    await expect(tracker.logParams(run.runId, { ...many, lr: 0.2 })).rejects.toThrow(/param "lr".*already logged it as "0.1"/);
    await expect(tracker.logParams(run.runId, { "bad:key": 1 })).rejects.toBeInstanceOf(BadParameterError);
    const py = await pythonRead(venv, url, `params ${unique}`);
    expect(py.runs[0].params).toEqual({ lr: "0.1" });
  });

  it("`ms-runs show` and `compare` read the server", async () => {
    const exp = await tracker.getOrCreateExperiment(`cli ${unique}`);
    const a = await tracker.startRun({ experimentId: exp.experimentId, runName: "a" });
    const b = await tracker.startRun({ experimentId: exp.experimentId, runName: "b" });
    await tracker.logParams(a.runId, { rank: 8 });
    await tracker.logParams(b.runId, { rank: 16 });
    await tracker.logMetrics(a.runId, [
      { key: "rmse", value: 0.9, step: 0 },
      { key: "rmse", value: 0.8, step: 1 },
    ]);
    await tracker.logMetrics(b.runId, [{ key: "rmse", value: Number.NaN }]);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    try {
      expect(await runsCommand(["compare", a.runId, b.runId, "--tracking-uri", url, "--json"])).toBe(0);
    } finally {
      spy.mockRestore();
      process.exitCode = 0;
    }
    expect(JSON.parse(out.join(""))).toEqual({
      runs: [
        { runId: a.runId, runName: "a", status: "RUNNING" },
        { runId: b.runId, runName: "b", status: "RUNNING" },
      ],
      params: { rank: ["8", "16"] },
      metrics: { rmse: [0.8, "NaN"] },
    });
  });
});

describe("a server that goes away", () => {
  let down = false;
  const proxy = http.createServer((req, res) => {
    if (down) {
      res.writeHead(503).end("maintenance");
      return;
    }
    const target = new URL(req.url ?? "/", url);
    const up = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  afterAll(() => new Promise((r) => proxy.close(r)));

  it("fails within the run's one retry budget, then at once, and never reports the run FINISHED", async () => {
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const proxied = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const flaky = createTracker(proxied, {
      env: {},
      logger: silentLogger(),
      retry: { maxTotalMs: 1_500, initialDelayMs: 50, maxDelayMs: 400 },
    });
    const name = `outage ${unique}`;
    const exp = await flaky.getOrCreateExperiment(name);
    const run = await flaky.startRun({ experimentId: exp.experimentId, runName: "interrupted" });
    await flaky.logMetrics(run.runId, [{ key: "before", value: 1 }]);

    down = true;
    const t0 = Date.now();
    await expect(flaky.logMetrics(run.runId, [{ key: "lost", value: 2 }])).rejects.toBeInstanceOf(TrackingUnavailableError);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect(flaky.endRun(run.runId, "FINISHED")).rejects.toThrow(/unavailable/);
    expect((await pythonRead(venv, url, name)).runs[0].info.status).toBe("RUNNING");

    // Back up, but this tracker's budget is spent: it sends nothing more and says which run it left open.
    down = false;
    await expect(flaky.endRun(run.runId, "FINISHED")).rejects.toThrow(/not sent, the retry budget/);
    expect(flaky.unclosedRuns()).toMatchObject([{ runId: run.runId, runName: "interrupted", wantedStatus: "FAILED" }]);
    expect((await pythonRead(venv, url, name)).runs[0].info.status).toBe("RUNNING");
    const next = createTracker(proxied, { env: {} });
    for (const r of flaky.unclosedRuns()) await next.endRun(r.runId, r.wantedStatus);
    const py = await pythonRead(venv, url, name);
    expect(py.runs[0].info.status).toBe("FAILED");
    expect(py.runs[0].metrics).toEqual({ before: 1 });
  });
});
