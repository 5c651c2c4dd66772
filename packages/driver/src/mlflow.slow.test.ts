/**
 * `ms run --tracking-uri http://...` against a real `mlflow server` (started by
 * `@ms/tracking/testing` from the pinned virtualenv): MLflow's own REST API then shows the parent
 * run, the nested step runs with their tags, params and metrics, and the uploaded artifacts; the
 * experiment kind tag, the parent's step-prefixed metrics and report.html, cached child runs with
 * the same history; `mlflow run` of the repository's MLproject (the run MLflow creates is our
 * parent); a parameter error leaves no run. And a tracking URI where nothing listens fails with
 * exit 7, visibly and within the run's budget.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { freePort, REPO_ROOT, startMlflowTestServer, type MlflowTestServer } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, finish, ms, runJson, sandbox, type Sandbox } from "./__tests__/harness.js";

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

interface KeyValue {
  key: string;
  value: string;
}

/** The parts of MLflow's REST answers these tests read (runs/get, experiments/get-by-name, metrics/get-history, artifacts/list). */
interface MlflowAnswer {
  run: { info: { status: string }; data: { params: KeyValue[]; metrics: { key: string; value: number }[]; tags?: KeyValue[] } };
  experiment: { experiment_id: string; tags?: KeyValue[] };
  metrics?: { step: number; value: number }[];
  files: { path: string }[];
}

async function api(pathname: string): Promise<MlflowAnswer> {
  const r = await fetch(`${url}/api/2.0/mlflow/${pathname}`);
  expect(r.status, pathname).toBe(200);
  return (await r.json()) as MlflowAnswer;
}

const tagsOf = (run: { data: { tags?: { key: string; value: string }[] } }) =>
  Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));

describe("ms run against a real MLflow tracking server", () => {
  it("MLflow shows the parent and nested step runs with tags, params, metrics and artifacts", async () => {
    const doc = await runJson([...SMALL, "--tracking-uri", url, "--experiment", "driver-rest"], box);
    const parent = (await api(`runs/get?run_id=${doc.runId}`)).run;
    expect(parent.info.status).toBe("FINISHED");
    expect(Object.fromEntries(parent.data.params.map((p: { key: string; value: string }) => [p.key, p.value]))).toMatchObject({
      als_max_iter: "2",
      keras_epochs: "1",
    });
    const entryPoints = ["load_raw_data", "etl_data", "als", "fm", "train_keras", "rank", "ranking"];
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
    expect(rmse?.value).toBeCloseTo(doc.steps[2].metrics.test_rmse, 6);
    const history = await api(`metrics/get-history?run_id=${doc.steps[2].runId}&metric_key=train_loss`);
    expect((history.metrics ?? []).map((m: { step: number }) => Number(m.step)).sort()).toEqual([1, 2]);
    const artifacts = await api(`artifacts/list?run_id=${doc.steps[4].runId}`);
    expect(artifacts.files.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(["manifest.json", "model.json"]));

    const warm = await runJson([...SMALL, "--tracking-uri", url, "--experiment", "driver-rest"], box);
    const hit = tagsOf((await api(`runs/get?run_id=${warm.steps[4].runId}`)).run);
    expect(hit["ms.cache.hit"]).toBe("true");
    expect(hit["ms.cache.producedByRun"]).toBe(doc.steps[4].runId);
  });

  it("experiment kind tag, step-prefixed parent metrics, report.html, and cached child runs with the computed history", async () => {
    const name = "driver-rest-mlflow";
    const cold = await runJson([...SMALL, "--tracking-uri", url, "--experiment", name], box);
    const warm = await runJson([...SMALL, "--tracking-uri", url, "--experiment", name], box);
    const exp = (await api(`experiments/get-by-name?experiment_name=${name}`)).experiment;
    expect(Object.fromEntries((exp.tags ?? []).map((t: { key: string; value: string }) => [t.key, t.value]))["mlflow.experimentKind"]).toBe(
      "custom_model_development",
    );
    for (const doc of [cold, warm]) {
      const parent = (await api(`runs/get?run_id=${doc.runId}`)).run;
      const metrics = Object.fromEntries(parent.data.metrics.map((m: { key: string; value: number }) => [m.key, m.value]));
      expect(metrics.als_test_rmse).toBeCloseTo(doc.steps[2].metrics.test_rmse, 6);
      expect(metrics.keras_test_rmse).toBeCloseTo(doc.steps[4].metrics.test_rmse, 6);
      expect((await api(`artifacts/list?run_id=${doc.runId}`)).files.map((f: { path: string }) => f.path)).toContain("report.html");
    }
    const history = async (runId: string, key: string) =>
      ((await api(`metrics/get-history?run_id=${runId}&metric_key=${key}`)).metrics ?? [])
        .map((m: { step: number; value: number }) => [Number(m.step), m.value])
        .sort((a: number[], b: number[]) => a[0] - b[0]);
    for (const [i, key] of [
      [2, "train_loss"],
      [3, "samples_used"],
      [3, "test_rmse"],
      [4, "loss"],
      [4, "val_loss"],
      [4, "test_rmse"],
    ] as const) {
      const computed = await history(cold.steps[i].runId, key);
      expect(computed.length, key).toBeGreaterThan(0);
      expect(await history(warm.steps[i].runId, key), key).toEqual(computed);
    }
  });

  it("a parameter error fails before any run is created", async () => {
    const name = "driver-rest-bad-param";
    const r = await ms(["run", ...SMALL, "-P", "als_rank=zero", "--tracking-uri", url, "--experiment", name], box);
    expect(r.code).toBe(2);
    const got = await fetch(`${url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${name}`);
    expect(got.status).toBe(404); // not even the experiment
  });

  it("mlflow run of the repository's MLproject: MLflow's run is the parent of the seven step runs", async () => {
    const name = "driver-mlflow-run";
    const child = spawn(
      path.join(server!.venv, "bin/mlflow"),
      [
        "run",
        REPO_ROOT,
        "-P",
        "als_max_iter=2",
        "-P",
        "keras_hidden_units=50",
        "-P",
        "dataset=synthetic",
        "-P",
        "max_row_limit=4000",
        "-P",
        "als_rank=4",
        "-P",
        "keras_epochs=1",
        "--env-manager",
        "local",
        "--experiment-name",
        name,
      ],
      { cwd: box.root, env: { ...box.env, MLFLOW_TRACKING_URI: url }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const r = await finish(child);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stderr).toMatch(/=== Run \(ID '[0-9a-f]+'\) succeeded ===/);
    const exp = (await api(`experiments/get-by-name?experiment_name=${name}`)).experiment;
    const search = await fetch(`${url}/api/2.0/mlflow/runs/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ experiment_ids: [exp.experiment_id], max_results: 100 }),
    });
    const runs = (
      (await search.json()) as {
        runs: {
          info: { run_id: string; status: string };
          data: { tags?: { key: string; value: string }[]; params?: { key: string; value: string }[]; metrics?: { key: string }[] };
        }[];
      }
    ).runs;
    const top = runs.filter((x) => !tagsOf(x)["mlflow.parentRunId"]);
    expect(top).toHaveLength(1);
    const parent = top[0];
    expect(parent.info.status).toBe("FINISHED");
    expect(
      runs
        .filter((x) => tagsOf(x)["mlflow.parentRunId"] === parent.info.run_id)
        .map((x) => tagsOf(x)["mlflow.runName"])
        .sort(),
    ).toEqual(["als", "etl_data", "fm", "load_raw_data", "rank", "ranking", "train_keras"]);
    const params = Object.fromEntries((parent.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params).toMatchObject({ als_max_iter: "2", keras_hidden_units: "50", als_rank: "4" });
    expect((parent.data.metrics ?? []).map((m) => m.key)).toEqual(expect.arrayContaining(["als_test_rmse", "keras_test_rmse"]));
    expect((await api(`artifacts/list?run_id=${parent.info.run_id}`)).files.map((f: { path: string }) => f.path)).toContain("report.html");
  });

  it("nothing listening at the tracking URI: exit 7 within the run's budget, with a warning naming the URL", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await ms(["run", ...SMALL, "--tracking-uri", dead], box, { MS_TRACKING_RETRY_TIMEOUT_MS: "2000" });
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toContain(`tracking server ${dead} did not answer`);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
  });
});
