/**
 * Our file store read by the real MLflow: its Python client (MLFLOW_ALLOW_FILE_STORE=true),
 * `mlflow server` pointed at our directory (asked through its REST API), and
 * `mlflow migrate-filestore` into SQLite; and the other way round, a store MLflow wrote read by us.
 */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { TAGS } from "./tags.js";
import { createTracker } from "./tracker.js";
import { startMlflowServer } from "./testing/index.js";
import * as v from "valibot";
import { makeTempDir, pythonJson, pythonRead } from "./testing/mlflow-python.js";
import { expectPythonSeesScenario, logScenario } from "./testing/scenario.js";

const exec = promisify(execFile);
const venv = inject("mlflowVenv");
const temps: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

describe("file store read by MLflow", () => {
  it("MLflow's Python client reads our runs field by field", async () => {
    const root = path.join(await tempDir("ms-file-slow-"), "mlruns");
    const store = createTracker(root, { env: {} });
    const s = await logScenario(store, "file scenario");
    await expectPythonSeesScenario(store, s, await pythonRead(venv, `file:${root}`, s.experimentName));
  });

  it("`mlflow server` on our ./mlruns serves our runs over REST", async () => {
    const dir = await tempDir("ms-file-server-");
    const root = path.join(dir, "mlruns");
    const store = createTracker(root, { env: {} });
    const s = await logScenario(store, "served");
    const server = await startMlflowServer(venv, ["--backend-store-uri", root, "--default-artifact-root", root], {
      MLFLOW_ALLOW_FILE_STORE: "true",
    });
    try {
      const res = await fetch(`${server.url}/api/2.0/mlflow/runs/get?run_id=${s.alsId}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { run: { info: { run_name: string; status: string } } };
      expect(body.run.info).toMatchObject({ run_name: "als", status: "FINISHED" });
      // Our REST client against MLflow serving our files sees what our file store sees.
      const rest = createTracker(server.url, { env: {}, retry: { maxTotalMs: 10_000 } });
      expect((await rest.getExperimentByName("served"))?.experimentId).toBe(s.experimentId);
      for (const id of [s.parentId, s.etlId, s.alsId]) {
        const [a, b] = [await store.getRun(id), await rest.getRun(id)];
        expect(b.info).toEqual(a.info);
        expect(b.params).toEqual(a.params);
        expect(b.tags).toEqual(a.tags);
        expect(Object.keys(b.metrics).sort()).toEqual(Object.keys(a.metrics).sort());
        expect((await rest.getMetricHistory(id, Object.keys(a.metrics)[0] ?? "none")).length).toBe(
          (await store.getMetricHistory(id, Object.keys(a.metrics)[0] ?? "none")).length,
        );
      }
      const children = await rest.searchRuns({ experimentIds: [s.experimentId], tags: { [TAGS.parent]: s.parentId } });
      expect(children.runs.map((r) => r.info.runName)).toEqual(["als", "etl"]);
    } finally {
      await server.stop();
    }
  });

  it("`mlflow migrate-filestore` moves our store into SQLite losslessly", async () => {
    const help = await exec(path.join(venv, "bin/mlflow"), ["--help"]);
    expect(help.stdout).toContain("migrate-filestore");
    const dir = await tempDir("ms-migrate-");
    const root = path.join(dir, "mlruns");
    const store = createTracker(root, { env: {} });
    const s = await logScenario(store, "migrated");
    const db = `sqlite:///${path.join(dir, "mlflow.db")}`;
    await exec(path.join(venv, "bin/mlflow"), ["migrate-filestore", "--source", root, "--target", db], {
      env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true" },
      timeout: 300_000,
    });
    // Artifacts stay where they are; the database points at them, so compare everything.
    await expectPythonSeesScenario(store, s, await pythonRead(venv, db, s.experimentName), { sqlInfinity: true });
  });
});

describe("a store MLflow wrote, read by us", () => {
  it("reads experiments, runs, params, tags and metrics written by MLflow's Python client", async () => {
    const root = path.join(await tempDir("ms-py-wrote-"), "mlruns");
    const name = `an experiment: with "double quotes", é, #hash and a long tail ${"word ".repeat(20)}`;
    const written = await pythonJson(
      venv,
      v.object({ experiment_id: v.string(), run_id: v.string(), child_id: v.string() }),
      `
import json, sys, warnings
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
from mlflow.entities import Metric
c = MlflowClient("file:" + sys.argv[1])
eid = c.create_experiment(sys.argv[2])
r = c.create_run(eid, run_name="py parent", tags={"k": "v\\nmultiline"})
ch = c.create_run(eid, run_name="py child", tags={"${TAGS.parent}": r.info.run_id})
c.log_batch(r.info.run_id, metrics=[Metric("m", float(i) / 3, 1700000000000 + i, i) for i in range(10)] + [Metric("bad", float("nan"), 1, 0)])
c.log_param(r.info.run_id, "p/q", "1e-3")
c.set_terminated(r.info.run_id, "KILLED")
print(json.dumps({"experiment_id": eid, "run_id": r.info.run_id, "child_id": ch.info.run_id}))
`,
      [root, name],
    );
    const store = createTracker(root, { env: {} });
    const exp = await store.getExperimentByName(name);
    expect(exp?.experimentId).toBe(written.experiment_id);
    const run = await store.getRun(written.run_id);
    expect(run.info).toMatchObject({ runName: "py parent", status: "KILLED", experimentId: written.experiment_id });
    expect(run.params).toEqual({ "p/q": "1e-3" });
    expect(run.tags).toMatchObject({ k: "v\nmultiline", [TAGS.runName]: "py parent" });
    expect(run.metrics.m).toMatchObject({ step: 9, value: 3 });
    expect(run.metrics.bad.value).toBeNaN();
    expect((await store.getMetricHistory(written.run_id, "m")).map((m) => m.value)).toEqual(Array.from({ length: 10 }, (_, i) => i / 3));
    const children = await store.searchRuns({ experimentIds: [written.experiment_id], tags: { [TAGS.parent]: written.run_id } });
    expect(children.runs.map((r) => r.info.runId)).toEqual([written.child_id]);
    // And we can keep logging into MLflow's run; MLflow still reads it.
    await store.logMetrics(written.child_id, [{ key: "from_ts", value: 2, step: 1 }]);
    await store.endRun(written.child_id, "FINISHED");
    const py = await pythonRead(venv, `file:${root}`, name);
    expect(py.runs.find((r) => r.info.run_id === written.child_id)).toMatchObject({
      info: { status: "FINISHED" },
      metrics: { from_ts: 2 },
    });
  });
});
