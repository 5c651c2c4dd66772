/**
 * `ms run --register-model NAME --alias champion` against a real `mlflow server` (started here
 * from the pinned virtualenv): the first run registers version 1 and sets the alias, a second run
 * registers version 2 and moves it; `ms predict --model-uri models:/NAME@champion` answers from
 * the aliased version's run (and `models:/NAME/1` from the first); MLflow's Python client loads
 * `models:/NAME@champion` as a pyfunc and predicts what `ms predict` does. The refusals that need
 * no server (a file store, bad names) are register.test.ts's.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startMlflowTestServer, type MlflowTestServer } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, ms, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

const exec = promisify(execFile);
let server: MlflowTestServer | undefined;
let url = "";
let box: Sandbox;

beforeAll(async () => {
  server = await startMlflowTestServer("ms-driver-registry-");
  url = server.url;
  box = await sandbox("ms-driver-registry-");
}, 20 * 60_000);

afterAll(async () => {
  await server?.stop();
  await box?.dispose();
});

interface Registered {
  name: string;
  version: number;
  alias?: string;
  status: string;
  modelUri: string;
  runId: string;
  source: string;
}
type RegisteredRun = RunDoc & { registeredModel: Registered; model?: { uri: string; runId: string; modelId?: string } };

interface Prediction {
  runId: string;
  model: string;
  modelUri?: { uri: string; runId: string; name?: string; version?: number; alias?: string };
  predictions: { userId: number; movieId: number; rating: number }[];
}

async function msJson<T>(args: string[]): Promise<T> {
  const r = await ms([...args, "--tracking-uri", url, "--json"], box);
  if (r.code !== 0) throw new Error(`ms ${args.join(" ")} exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout) as T;
}

/** What the registry says an alias points to (MLflow's REST API, read directly). */
async function aliasOf(name: string, alias: string): Promise<{ version: string; run_id: string }> {
  const r = await fetch(`${url}/api/2.0/mlflow/registered-models/alias?${new URLSearchParams({ name, alias })}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { model_version: { version: string; run_id: string } }).model_version;
}

describe("ms run --register-model against a real MLflow server", () => {
  const name = "movielens-ms";
  let first: RegisteredRun;
  let second: RegisteredRun;
  let pairs = "";

  it("registers version 1 with the alias, then version 2 moves it; predict by alias answers from version 2's run", async () => {
    first = await msJson<RegisteredRun>(["run", ...SMALL, "--register-model", name, "--alias", "champion"]);
    expect(first.registeredModel).toMatchObject({
      name,
      version: 1,
      alias: "champion",
      status: "READY",
      modelUri: `models:/${name}@champion`,
    });
    expect(first.steps.map((s) => s.runId)).toContain(first.registeredModel.runId);
    // The version is of the LoggedModel the run logged (MLflow 3), from the model's step run.
    expect(first.model?.modelId).toMatch(/^m-/);
    expect(first.registeredModel).toMatchObject({ runId: first.model?.runId, source: `models:/${first.model?.modelId}` });
    expect(await aliasOf(name, "champion")).toMatchObject({ version: "1", run_id: first.registeredModel.runId });

    second = await msJson<RegisteredRun>(["run", ...SMALL, "-P", "keras_epochs=2", "--register-model", name, "--alias", "champion"]);
    expect(second.registeredModel).toMatchObject({ name, version: 2, alias: "champion" });
    expect(second.registeredModel.runId).not.toBe(first.registeredModel.runId);
    expect(await aliasOf(name, "champion")).toMatchObject({ version: "2", run_id: second.registeredModel.runId });

    const recs = await msJson<{ recommendations: { movieId: number }[] }>([
      "recommend",
      "--user",
      "3",
      "--top",
      "3",
      "--model",
      "als",
      "--run",
      second.runId,
    ]);
    pairs = path.join(box.root, "pairs.csv");
    await writeFile(pairs, `userId,movieId\n${recs.recommendations.map((r) => `3,${r.movieId}`).join("\n")}\n`);

    const byAlias = await msJson<Prediction>(["predict", "--pairs", pairs, "--model-uri", `models:/${name}@champion`]);
    expect(byAlias.runId).toBe(second.runId);
    expect(byAlias.modelUri).toMatchObject({ name, version: 2, alias: "champion", runId: second.registeredModel.runId });
    const byRun = await msJson<Prediction>(["predict", "--pairs", pairs, "--run", second.runId]);
    expect(byAlias.predictions).toEqual(byRun.predictions);

    const v1 = await msJson<Prediction>(["predict", "--pairs", pairs, "--model-uri", `models:/${name}/1`]);
    expect(v1.runId).toBe(first.runId);
    const runUri = await msJson<Prediction>(["predict", "--pairs", pairs, "--model-uri", `runs:/${first.registeredModel.runId}/model`]);
    expect(runUri.predictions).toEqual(v1.predictions);
  });

  it("an unknown alias, version or model is exit 2 naming the URI", async () => {
    for (const [uri, why] of [
      [`models:/${name}@canary`, /has no alias "canary" \(its aliases: champion -> version 2\)/],
      [`models:/${name}/9`, /has no version 9/],
      ["models:/no-such-model@champion", /no registered model named "no-such-model"/],
    ] as const) {
      const r = await ms(["predict", "--user", "3", "--movie", "1", "--model-uri", uri, "--tracking-uri", url], box);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(uri);
      expect(r.stderr).toMatch(why);
    }
  });

  it("MLflow's Python client loads models:/NAME@champion and predicts what ms predict does", async () => {
    const code = [
      "import json, sys, mlflow, pandas as pd",
      "mlflow.set_tracking_uri(sys.argv[1])",
      "model = mlflow.pyfunc.load_model(sys.argv[2])",
      "df = pd.read_csv(sys.argv[3])",
      "out = model.predict(df)",
      "col = out['prediction'] if hasattr(out, 'columns') else out",
      "print(json.dumps([float(x) for x in list(col)]))",
    ].join("\n");
    const { stdout } = await exec(path.join(server!.venv, "bin/python"), ["-c", code, url, `models:/${name}@champion`, pairs], {
      timeout: 300_000,
      maxBuffer: 1 << 24,
    });
    const python = JSON.parse(stdout.trim().split("\n").pop() ?? "[]") as number[];
    const ours = await msJson<Prediction>(["predict", "--pairs", pairs, "--model-uri", `models:/${name}@champion`]);
    expect(python).toHaveLength(ours.predictions.length);
    for (const [i, p] of ours.predictions.entries()) expect(python[i]).toBeCloseTo(p.rating, 3);
  });
});
