/**
 * `ms run --tracking-uri http://...` against a real `mlflow server` (started by
 * `@ms/tracking/testing` from the pinned virtualenv): MLflow's own REST API then shows the parent
 * run, the nested step runs with their tags, params and metrics, and the uploaded artifacts. And
 * a tracking URI where nothing listens fails with exit 7, visibly and within the run's budget.
 */
import { freePort, startMlflowTestServer, type MlflowTestServer } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, ms, runJson, sandbox, type Sandbox } from "./__tests__/harness.js";

let server: MlflowTestServer | undefined;
let url = "";
let box: Sandbox;

beforeAll(async () => {
  server = await startMlflowTestServer("ms-driver-mlflow-");
  url = server.url;
  box = await sandbox("ms-driver-rest-");
}, 20 * 60_000);

afterAll(async () => {
  await server?.stop();
  await box?.dispose();
});

async function api(pathname: string): Promise<any> {
  const r = await fetch(`${url}/api/2.0/mlflow/${pathname}`);
  expect(r.status, pathname).toBe(200);
  return r.json();
}

const tagsOf = (run: { data: { tags?: { key: string; value: string }[] } }) => Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));

describe("ms run against a real MLflow tracking server", () => {
  it("MLflow shows the parent and nested step runs with tags, params, metrics and artifacts", async () => {
    const doc = await runJson([...SMALL, "--tracking-uri", url, "--experiment", "driver-rest"], box);
    const parent = (await api(`runs/get?run_id=${doc.runId}`)).run;
    expect(parent.info.status).toBe("FINISHED");
    expect(Object.fromEntries(parent.data.params.map((p: { key: string; value: string }) => [p.key, p.value]))).toMatchObject({ als_max_iter: "2", keras_epochs: "1" });
    const entryPoints = ["load_raw_data", "etl_data", "als", "train_keras"];
    for (const [i, step] of doc.steps.entries()) {
      const run = (await api(`runs/get?run_id=${step.runId}`)).run;
      const tags = tagsOf(run);
      expect(tags["mlflow.parentRunId"]).toBe(doc.runId);
      expect(tags["mlflow.project.entryPoint"]).toBe(entryPoints[i]);
      expect(tags["ms.cache.key"]).toBe(step.key);
      expect(tags["ms.cache.hit"]).toBe("false");
      expect(run.info.status).toBe("FINISHED");
    }
    const als = (await api(`runs/get?run_id=${doc.steps[2].runId}`)).run;
    const rmse = als.data.metrics.find((m: { key: string }) => m.key === "test_rmse");
    expect(rmse.value).toBeCloseTo(doc.steps[2].metrics.test_rmse, 6);
    const history = await api(`metrics/get-history?run_id=${doc.steps[2].runId}&metric_key=train_loss`);
    expect(history.metrics.map((m: { step: number }) => Number(m.step)).sort()).toEqual([1, 2]);
    const artifacts = await api(`artifacts/list?run_id=${doc.steps[3].runId}`);
    expect(artifacts.files.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(["manifest.json", "model.json"]));

    const warm = await runJson([...SMALL, "--tracking-uri", url, "--experiment", "driver-rest"], box);
    const hit = tagsOf((await api(`runs/get?run_id=${warm.steps[3].runId}`)).run);
    expect(hit["ms.cache.hit"]).toBe("true");
    expect(hit["ms.cache.producedByRun"]).toBe(doc.steps[3].runId);
  });

  it("nothing listening at the tracking URI: exit 7 within the run's budget, with a warning naming the URL", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await ms(["run", ...SMALL, "--tracking-uri", dead], box, { MS_TRACKING_RETRY_TIMEOUT_MS: "2000" });
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toContain(`tracking server ${dead} did not answer`);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
  });
});
