/**
 * The model outside ms, against the real MLflow: after `ms run` on the small synthetic fixture,
 * MLflow's Python client loads `runs:/<keras run>/model` (and the LoggedModel) and predicts what
 * `ms predict --pairs` prints for the same pairs, within TOLERANCE, and refuses the same unknown
 * user; `search_logged_models` finds the model READY, the runs list the dataset, the parent links
 * the model; `mlflow models serve --env-manager local` answers `/invocations` with the same
 * numbers and a 400 for an unknown id. On a file store too (with the fm step's time effects and
 * ordinal output, which change the features), whose Default experiment MLflow made without
 * `mlflow.experimentKind` and gets it.
 */
import { execFile, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, startMlflowTestServer, type MlflowTestServer } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

/** Each case runs ms, MLflow's Python client several times and maybe a scoring server: minutes on a loaded machine. */
const CASE_MS = 15 * 60_000;

/** ms predict rounds to 4 decimals; the pyfunc's float32 network agrees with tfjs's to ~1e-6. */
const TOLERANCE = 1e-4;
const exec = promisify(execFile);

let server: MlflowTestServer | undefined;
let box: Sandbox;

beforeAll(async () => {
  server = await startMlflowTestServer("ms-driver-mlmodel-");
  box = await sandbox("ms-driver-mlmodel-");
}, 20 * 60_000);

afterAll(async () => {
  await server?.stop();
  await box?.dispose();
});

interface PyfuncAnswer {
  pairs: [number, number][];
  predictions: number[];
  unknown: { type: string; message: string };
  signature: string;
}

/** Loads the model with MLflow's Python client, scores a grid of known pairs and one unknown user. */
const PYFUNC = `
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow.pyfunc, pandas as pd
m = mlflow.pyfunc.load_model(sys.argv[1])
raw = m.get_raw_model()
users, movies = [int(u) for u in raw.user_ids[:4]], [int(x) for x in raw.movie_ids[::max(1, len(raw.movie_ids) // 12)]]
pairs = [[u, x] for u in users for x in movies]
p = m.predict(pd.DataFrame(pairs, columns=["userId", "movieId"]))
try:
    m.predict(pd.DataFrame([[users[0], movies[0]], [999999, movies[0]]], columns=["userId", "movieId"]))
    unknown = {"type": "none", "message": ""}
except Exception as e:
    unknown = {"type": type(e).__name__, "message": str(e)}
print(json.dumps({"pairs": pairs, "predictions": [float(x) for x in p], "unknown": unknown, "signature": str(m.metadata.signature.to_dict())}))
`;

async function python<T>(code: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const venv = (server as MlflowTestServer).venv;
  const { stdout } = await exec(path.join(venv, "bin/python"), ["-c", code, ...args], {
    env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true", ...env },
    maxBuffer: 1 << 24,
    timeout: 180_000,
  });
  return JSON.parse(stdout) as T;
}

/** `ms predict --pairs` of the same pairs, and its refusal of the same unknown user. */
async function expectSameAsMsPredict(doc: RunDoc, answer: PyfuncAnswer, trackingUri: string): Promise<void> {
  const file = path.join(box.root, `pairs-${doc.runId}.csv`);
  await fs.writeFile(file, `userId,movieId\n${answer.pairs.map((p) => p.join(",")).join("\n")}\n`);
  const r = await ms(["predict", "--pairs", file, "--run", doc.runId, "--tracking-uri", trackingUri, "--json"], box);
  expect(r.code, r.stderr).toBe(0);
  const printed = (JSON.parse(r.stdout) as { predictions: { rating: number }[] }).predictions.map((p) => p.rating);
  expect(printed).toHaveLength(answer.predictions.length);
  for (const [i, rating] of printed.entries())
    expect(Math.abs(rating - answer.predictions[i]), `pair ${answer.pairs[i]}`).toBeLessThan(TOLERANCE);
  await fs.writeFile(file, `userId,movieId\n${answer.pairs[0].join(",")}\n999999,${answer.pairs[0][1]}\n`);
  const refused = await ms(["predict", "--pairs", file, "--run", doc.runId, "--tracking-uri", trackingUri], box);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("user 999999 is not in the training ratings");
  expect(answer.unknown.type).toBe("MlflowException");
  expect(answer.unknown.message).toContain("user 999999 is not in the training ratings");
}

/** `mlflow models serve` of the model: /invocations gives the pyfunc's numbers; an unknown id is a 400. */
async function expectServed(modelUri: string, answer: PyfuncAnswer): Promise<void> {
  const venv = (server as MlflowTestServer).venv;
  const port = await freePort();
  const child = spawn(
    path.join(venv, "bin/mlflow"),
    ["models", "serve", "-m", modelUri, "--env-manager", "local", "--host", "127.0.0.1", "--port", String(port), "--workers", "1"],
    // Its scoring server is started as `uvicorn` from PATH: the venv's bin goes first.
    {
      env: { ...process.env, PATH: `${path.join(venv, "bin")}:${process.env.PATH}`, MLFLOW_TRACKING_URI: server?.url },
      detached: true,
      stdio: "ignore",
    },
  );
  try {
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 300_000;
    while (
      !(await fetch(`${base}/ping`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`mlflow models serve did not answer /ping (exit ${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const post = (body: unknown) =>
      fetch(`${base}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const ok = await post({ dataframe_split: { columns: ["userId", "movieId"], data: answer.pairs } });
    expect(ok.status).toBe(200);
    const served = ((await ok.json()) as { predictions: number[] }).predictions;
    for (const [i, p] of served.entries()) expect(Math.abs(p - answer.predictions[i])).toBeLessThan(1e-9);
    const bad = await post({ dataframe_records: [{ userId: 999999, movieId: answer.pairs[0][1] }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error_code: string; message: string }).error_code).toBe("INVALID_PARAMETER_VALUE");
  } finally {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
  }
}

describe("the final model as an MLflow Model", () => {
  it(
    "on mlflow server: pyfunc and mlflow models serve predict what ms predict prints; the LoggedModel, the dataset, the link",
    async () => {
      const url = (server as MlflowTestServer).url;
      const doc = (await runJson([...SMALL, "--tracking-uri", url, "--experiment", "mlmodel"], box)) as RunDoc & {
        model: { uri: string; runId: string; kind: string; modelId: string };
      };
      const keras = doc.steps.find((s) => s.step === "keras");
      expect(doc.model).toMatchObject({ uri: `runs:/${keras?.runId}/model`, runId: keras?.runId, kind: "keras" });
      const answer = await python<PyfuncAnswer>(PYFUNC, [doc.model.uri], { MLFLOW_TRACKING_URI: url });
      expect(answer.signature).toContain('"name": "userId"');
      await expectSameAsMsPredict(doc, answer, url);
      const byId = await python<PyfuncAnswer>(PYFUNC, [`models:/${doc.model.modelId}`], { MLFLOW_TRACKING_URI: url });
      expect(byId.predictions).toEqual(answer.predictions);

      const seen = await python<{ models: string[][]; inputs: string[][]; parentInputs: string[][]; parentTags: Record<string, string> }>(
        `
import json, sys, warnings
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
c = MlflowClient()
parent, child = c.get_run(sys.argv[1]), c.get_run(sys.argv[2])
ins = lambda r: [[d.dataset.name, d.dataset.digest, json.loads(d.dataset.profile)["ms_digest"]] for d in r.inputs.dataset_inputs]
ms = c.search_logged_models(experiment_ids=[parent.info.experiment_id])
print(json.dumps({"models": [[m.model_id, m.name, str(m.status), m.source_run_id] for m in ms], "inputs": ins(child), "parentInputs": ins(parent),
  "parentTags": {k: v for k, v in parent.data.tags.items() if k.startswith("ms.model")}}))
`,
        [doc.runId, doc.model.runId],
        { MLFLOW_TRACKING_URI: url },
      );
      expect(seen.models).toEqual([[doc.model.modelId, "model", "READY", doc.model.runId]]);
      const etl = doc.steps.find((s) => s.step === "etl")?.outputs.ratings?.digest as string;
      const dataset = ["synthetic", etl.slice("sha256:".length, "sha256:".length + 36), etl];
      expect(seen.inputs).toEqual([dataset]);
      expect(seen.parentInputs).toEqual([dataset]);
      expect(seen.parentTags).toEqual({ "ms.model.uri": doc.model.uri, "ms.model.kind": "keras", "ms.model.id": doc.model.modelId });

      await expectServed(doc.model.uri, answer);
    },
    CASE_MS,
  );

  it(
    "on a file store, with fm's time and ordinal groups: the model loads from runs:/ and predicts what ms predict prints; MLflow's Default gets its kind",
    async () => {
      const root = path.join(box.root, "file-mlruns");
      const fileUri = `file:${root}`;
      // MLflow makes the Default experiment, without mlflow.experimentKind.
      const before = await python<Record<string, string>>(
        "import json,sys,warnings; warnings.filterwarnings('ignore'); from mlflow import MlflowClient; c = MlflowClient(sys.argv[1]); c.create_run('0'); print(json.dumps(c.get_experiment('0').tags))",
        [fileUri],
        {},
      );
      expect(before["mlflow.experimentKind"]).toBeUndefined();
      // With the fm step's time effects and ordinal output, whose features the pyfunc computes too.
      const groups = ["-P", "fm_time=true", "-P", "fm_output=ordinal", "-P", "fm_implicit_user=true"];
      const doc = (await runJson([...SMALL, ...groups, "--tracking-uri", root], box)) as RunDoc & {
        model: { uri: string; modelId?: string };
      };
      expect(doc.model.modelId).toBeUndefined();
      const answer = await python<PyfuncAnswer>(PYFUNC, [doc.model.uri], { MLFLOW_TRACKING_URI: fileUri });
      await expectSameAsMsPredict(doc, answer, root);
      const after = await python<Record<string, string>>(
        "import json,sys,warnings; warnings.filterwarnings('ignore'); from mlflow import MlflowClient; print(json.dumps(MlflowClient(sys.argv[1]).get_experiment('0').tags))",
        [fileUri],
        {},
      );
      expect(after["mlflow.experimentKind"]).toBe("custom_model_development");
    },
    CASE_MS,
  );

  it(
    "with the seed's features (-P keras_features=seed -P fm_model=none): the pyfunc builds them from the factors' raw copy",
    async () => {
      const root = path.join(box.root, "seed-mlruns");
      const seed = ["-P", "keras_features=seed", "-P", "fm_model=none"];
      const doc = (await runJson([...SMALL, ...seed, "--tracking-uri", root], box)) as RunDoc & { model: { uri: string } };
      const answer = await python<PyfuncAnswer>(PYFUNC, [doc.model.uri], { MLFLOW_TRACKING_URI: `file:${root}` });
      await expectSameAsMsPredict(doc, answer, root);
    },
    CASE_MS,
  );
});
