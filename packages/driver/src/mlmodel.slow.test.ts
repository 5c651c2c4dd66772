/**
 * The model outside ms, against the real MLflow: after `ms run` on the small synthetic fixture,
 * MLflow's Python client loads `runs:/<keras run>/model` (and the LoggedModel) and predicts what
 * `ms predict --pairs` prints for the same pairs, within TOLERANCE, pairs with an unknown user or
 * movie included (ms's cold-start rule, the same in both; `ms predict --user --movie` too);
 * `search_logged_models` finds the model READY, the runs list the dataset, the parent links the
 * model; `mlflow models serve --env-manager local` and `ms serve` answer `/invocations` with the
 * same numbers, the cold-start ones identical. On a file store too (with the fm step's time effects and
 * ordinal output, which change the features), whose Default experiment MLflow made without
 * `mlflow.experimentKind` and gets it; there the signature's optional `timestamp` column reaches the
 * time effects, in the pyfunc as in `ms predict --pairs` and `ms serve`.
 */
import { execFile, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, startMlflowTestServer, type MlflowTestServer } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, finish, ms, runJson, sandbox, spawnMs, type RunDoc, type Sandbox } from "./__tests__/harness.js";

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
  signature: string;
}

/** The last pairs of the PYFUNC script's: an unknown user, an unknown movie, both. */
const COLD_SIDES = ["user", "movie", "user+movie"];

/** Loads the model with MLflow's Python client, scores a grid of known pairs and three with unknown ids. */
const PYFUNC = `
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow.pyfunc, pandas as pd
m = mlflow.pyfunc.load_model(sys.argv[1])
raw = m.get_raw_model()
users, movies = [int(u) for u in raw.user_ids[:4]], [int(x) for x in raw.movie_ids[::max(1, len(raw.movie_ids) // 12)]]
pairs = [[u, x] for u in users for x in movies] + [[999999, movies[0]], [users[0], 987654321], [999999, 987654321]]
p = m.predict(pd.DataFrame(pairs, columns=["userId", "movieId"]))
print(json.dumps({"pairs": pairs, "predictions": [float(x) for x in p], "signature": str(m.metadata.signature.to_dict())}))
`;

interface TimedAnswer {
  /** [userId, movieId, timestamp]: users on days they rated (their day bias), a time before the range, a cold user. */
  pairs: [number, number, number][];
  predictions: number[];
  /** The same pairs without the timestamp column: scored at the end of the training range. */
  plain: number[];
}

/** Loads a stacked model with time effects and scores pairs with and without the timestamp column. */
const PYFUNC_TIMED = `
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow.pyfunc, pandas as pd
m = mlflow.pyfunc.load_model(sys.argv[1])
raw = m.get_raw_model()
tt = raw.tables["time"]
movies = [int(x) for x in raw.movie_ids[::max(1, len(raw.movie_ids) // 6)]]
days = range(0, len(tt["day"]), max(1, len(tt["day"]) // 8))
rows = [[int(raw.user_ids[int(tt["dayUser"][k])]), x, int(tt["day"][k]) * 86400 + 3600] for k in days for x in movies]
rows += [[int(raw.user_ids[0]), movies[0], int(tt["start"]) - 10**7], [999999, movies[0], int(tt["start"])]]
p = m.predict(pd.DataFrame(rows, columns=["userId", "movieId", "timestamp"]))
plain = m.predict(pd.DataFrame([r[:2] for r in rows], columns=["userId", "movieId"]))
print(json.dumps({"pairs": rows, "predictions": [float(x) for x in p], "plain": [float(x) for x in plain]}))
`;

/** `ms predict --pairs` with a timestamp column and `ms serve` with one give the pyfunc's timed numbers. */
async function expectSameTimed(doc: RunDoc, answer: TimedAnswer, trackingUri: string): Promise<void> {
  const moved = answer.predictions.map((p, i) => Math.abs(p - answer.plain[i]));
  expect(Math.max(...moved)).toBeGreaterThan(1e-3);
  const file = path.join(box.root, `timed-${doc.runId}.csv`);
  await fs.writeFile(file, `userId,movieId,timestamp\n${answer.pairs.map((p) => p.join(",")).join("\n")}\n`);
  const r = await ms(["predict", "--pairs", file, "--run", doc.runId, "--tracking-uri", trackingUri, "--json"], box);
  expect(r.code, r.stderr).toBe(0);
  const rows = (JSON.parse(r.stdout) as { predictions: { rating: number }[] }).predictions;
  expect(rows).toHaveLength(answer.pairs.length);
  for (const [i, row] of rows.entries())
    expect(Math.abs(row.rating - answer.predictions[i]), `pair ${answer.pairs[i]}`).toBeLessThan(TOLERANCE);
  const served = await msServed(doc, trackingUri, ["userId", "movieId", "timestamp"], answer.pairs);
  for (const [i, p] of served.entries()) expect(Math.abs(p - answer.predictions[i]), `pair ${answer.pairs[i]}`).toBeLessThan(1e-5);
}

/** `ms serve` of the run, asked `/invocations` once (dataframe_split of these columns and rows): its predictions. */
async function msServed(doc: RunDoc, trackingUri: string, columns: string[], data: number[][]): Promise<number[]> {
  const child = spawnMs(["serve", "--port", "0", "--json", "--run", doc.runId, "--tracking-uri", trackingUri], box);
  const done = finish(child);
  try {
    const info = await listening(child, done);
    const res = await fetch(`${info.url}/invocations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ dataframe_split: { columns, data } }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { predictions: number[] }).predictions;
  } finally {
    child.kill("SIGTERM");
    await done;
  }
}

/** The first line `ms serve --json` prints (its URL), or its stderr when it exits first. */
function listening(child: ReturnType<typeof spawnMs>, done: ReturnType<typeof finish>): Promise<{ url: string }> {
  return new Promise<{ url: string }>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]) as { url: string });
    });
    void done.then((r) => reject(new Error(`ms serve exited ${r.code} before listening:\n${r.stderr}`)));
  });
}

async function python<T>(code: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const venv = (server as MlflowTestServer).venv;
  const { stdout } = await exec(path.join(venv, "bin/python"), ["-c", code, ...args], {
    env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true", ...env },
    maxBuffer: 1 << 24,
    timeout: 180_000,
  });
  return JSON.parse(stdout) as T;
}

/** `ms predict --pairs` of the same pairs (the cold ones marked), and `ms predict --user --movie` of a cold one. */
async function expectSameAsMsPredict(doc: RunDoc, answer: PyfuncAnswer, trackingUri: string): Promise<void> {
  const file = path.join(box.root, `pairs-${doc.runId}.csv`);
  await fs.writeFile(file, `userId,movieId\n${answer.pairs.map((p) => p.join(",")).join("\n")}\n`);
  const r = await ms(["predict", "--pairs", file, "--run", doc.runId, "--tracking-uri", trackingUri, "--json"], box);
  expect(r.code, r.stderr).toBe(0);
  const rows = (JSON.parse(r.stdout) as { predictions: { rating: number; cold?: string }[] }).predictions;
  expect(rows).toHaveLength(answer.predictions.length);
  for (const [i, row] of rows.entries())
    expect(Math.abs(row.rating - answer.predictions[i]), `pair ${answer.pairs[i]}`).toBeLessThan(TOLERANCE);
  expect(rows.map((x) => x.cold).slice(-4)).toEqual([undefined, ...COLD_SIDES]);
  // The cold-start numbers differ by side (the known side's bias), so the rule is seen, not a constant.
  expect(new Set(answer.predictions.slice(-3)).size).toBe(3);
  const [u, m] = answer.pairs.at(-3) as [number, number];
  const one = await ms(
    ["predict", "--user", String(u), "--movie", String(m), "--run", doc.runId, "--tracking-uri", trackingUri, "--json"],
    box,
  );
  expect(one.code, one.stderr).toBe(0);
  expect((JSON.parse(one.stdout) as { predictions: unknown[] }).predictions).toEqual([rows.at(-3)]);
}

/** `ms serve` of the run: /invocations gives the pyfunc's numbers, the cold-start ones to the bit. */
async function expectMsServed(doc: RunDoc, answer: PyfuncAnswer, trackingUri: string): Promise<void> {
  const served = await msServed(doc, trackingUri, ["userId", "movieId"], answer.pairs);
  expect(served).toHaveLength(answer.pairs.length);
  for (const [i, p] of served.entries()) expect(Math.abs(p - answer.predictions[i]), `pair ${answer.pairs[i]}`).toBeLessThan(1e-5);
  expect(served.slice(-3)).toEqual(answer.predictions.slice(-3));
}

/** `mlflow models serve` of the model: /invocations gives the pyfunc's numbers, the cold-start ones included. */
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
    expect(served).toHaveLength(answer.pairs.length);
    for (const [i, p] of served.entries()) expect(Math.abs(p - answer.predictions[i])).toBeLessThan(1e-9);
    const cold = await post({ dataframe_records: [{ userId: 999999, movieId: answer.pairs[0][1] }] });
    expect(cold.status).toBe(200);
    expect(((await cold.json()) as { predictions: number[] }).predictions).toEqual([answer.predictions.at(-3)]);
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
      await expectMsServed(doc, answer, url);
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
      const timed = await python<TimedAnswer>(PYFUNC_TIMED, [doc.model.uri], { MLFLOW_TRACKING_URI: fileUri });
      await expectSameTimed(doc, timed, root);
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
