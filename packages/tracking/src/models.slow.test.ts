/**
 * Datasets, logged models and experiment tags set only when absent, against the real MLflow: a
 * `mlflow server` (the slow project's globalSetup) and a file store, each read back through
 * MLflow's Python client. A file store has no logged models: `createLoggedModel` says so with
 * undefined and the search is empty.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { recordOf } from "@ms/contracts";
import * as v from "valibot";
import { afterAll, describe, expect, inject, it } from "vitest";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG } from "./tags.js";
import { createTracker } from "./tracker.js";
import { makeTempDir, pythonJson } from "./testing/mlflow-python.js";
import type { DatasetInput, Tracker } from "./types.js";

const url = inject("mlflowUrl");
const venv = inject("mlflowVenv");
const unique = `${process.pid}-${Date.now()}`;
const temps: string[] = [];
afterAll(async () => {
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

const dataset: DatasetInput = {
  name: "ml-test",
  digest: "0123456789abcdef0123456789abcdef0123",
  sourceType: "local",
  source: JSON.stringify({ uri: "file:///data/ratings.csv" }),
  schema: JSON.stringify({ mlflow_colspec: [{ type: "integer", name: "userId", required: true }] }),
  profile: JSON.stringify({ num_rows: 42 }),
  context: "training",
};

const PyInputs = v.array(
  v.object({
    name: v.string(),
    digest: v.string(),
    source_type: v.string(),
    source: v.string(),
    schema: v.string(),
    profile: v.string(),
    tags: recordOf(v.string()),
  }),
);
const READ_INPUTS = `
import json, sys, warnings
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
r = MlflowClient(sys.argv[1]).get_run(sys.argv[2])
print(json.dumps([dict(name=d.dataset.name, digest=d.dataset.digest, source_type=d.dataset.source_type, source=d.dataset.source,
  schema=d.dataset.schema, profile=d.dataset.profile, tags={t.key: t.value for t in d.tags}) for d in r.inputs.dataset_inputs]))
`;
const CREATE_UNTAGGED = `
import json, sys, warnings
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
print(json.dumps(MlflowClient(sys.argv[1]).create_experiment(sys.argv[2])))
`;
const READ_TAGS =
  "import json,sys; from mlflow import MlflowClient; print(json.dumps(MlflowClient(sys.argv[1]).get_experiment(sys.argv[2]).tags))";

/** An experiment MLflow's client created (no experiment kind), tagged by us once, read back by MLflow. */
async function expectKindAdded(tracker: Tracker, uri: string): Promise<void> {
  const id = await pythonJson(venv, v.string(), CREATE_UNTAGGED, [uri, `untagged ${unique}`]);
  expect((await pythonJson(venv, recordOf(v.string()), READ_TAGS, [uri, id]))[EXPERIMENT_KIND_TAG]).toBeUndefined();
  expect(await tracker.ensureExperimentTag(id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)).toBe(true);
  expect(await tracker.ensureExperimentTag(id, EXPERIMENT_KIND_TAG, "other")).toBe(false);
  expect((await pythonJson(venv, recordOf(v.string()), READ_TAGS, [uri, id]))[EXPERIMENT_KIND_TAG]).toBe(EXPERIMENT_KIND);
}

/** A run with the dataset logged twice (linked once), as MLflow's client lists its inputs. */
async function expectDatasetInput(tracker: Tracker, uri: string): Promise<string> {
  const exp = await tracker.getOrCreateExperiment(`inputs ${unique}`);
  const run = await tracker.startRun({ experimentId: exp.experimentId, runName: "with data" });
  await tracker.logInputs(run.runId, [dataset]);
  await tracker.logInputs(run.runId, [dataset]);
  await tracker.endRun(run.runId);
  const inputs = await pythonJson(venv, PyInputs, READ_INPUTS, [uri, run.runId]);
  const { context: _, sourceType, ...fields } = dataset;
  expect(inputs).toEqual([{ ...fields, source_type: sourceType, tags: { "mlflow.data.context": "training" } }]);
  return exp.experimentId;
}

describe("datasets, logged models and experiment tags on mlflow server", () => {
  const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 20_000 } });

  it("tags an experiment MLflow created without mlflow.experimentKind, once", () => expectKindAdded(tracker, url));

  it("logs a dataset input MLflow's client lists with its schema, profile and context", async () => {
    await expectDatasetInput(tracker, url);
    await expect(tracker.logInputs("abc", [{ ...dataset, digest: "x".repeat(37) }])).rejects.toThrow(/digest.*36/);
  });

  it("creates, fills and finalizes a logged model linked to its run, which MLflow's client finds and downloads", async () => {
    const exp = await tracker.getOrCreateExperiment(`models ${unique}`);
    const run = await tracker.startRun({ experimentId: exp.experimentId, runName: "trainer" });
    const model = await tracker.createLoggedModel({
      experimentId: exp.experimentId,
      name: "model",
      sourceRunId: run.runId,
      tags: { k: "v" },
    });
    expect(model).toMatchObject({ name: "model", status: "PENDING", sourceRunId: run.runId, tags: { k: "v" } });
    const dir = await makeTempDir("ms-logged-model-");
    temps.push(dir);
    await fs.mkdir(path.join(dir, "data"));
    await fs.writeFile(path.join(dir, "MLmodel"), "flavors: {}\n");
    await fs.writeFile(path.join(dir, "data", "w.bin"), Buffer.from([1, 2, 3]));
    const id = model?.modelId as string;
    await tracker.logLoggedModelArtifacts(id, dir);
    await tracker.logOutputs(run.runId, [{ modelId: id }]);
    expect((await tracker.finalizeLoggedModel(id, "READY")).status).toBe("READY");
    await tracker.endRun(run.runId);
    expect((await tracker.searchLoggedModels([exp.experimentId])).map((m) => [m.modelId, m.status])).toEqual([[id, "READY"]]);
    const seen = await pythonJson(
      venv,
      v.object({ models: v.array(v.array(v.string())), outputs: v.array(v.string()), files: v.array(v.string()) }),
      `
import json, os, sys, tempfile, warnings
warnings.filterwarnings("ignore")
import mlflow
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1])
mlflow.set_tracking_uri(sys.argv[1])
ms = c.search_logged_models(experiment_ids=[sys.argv[2]])
out = c.get_run(sys.argv[3]).outputs.model_outputs
d = mlflow.artifacts.download_artifacts("runs:/" + sys.argv[3] + "/model", dst_path=tempfile.mkdtemp())
files = sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)
print(json.dumps({"models": [[m.model_id, str(m.status), m.source_run_id] for m in ms], "outputs": [o.model_id for o in out], "files": files}))
`,
      [url, exp.experimentId, run.runId],
    );
    expect(seen).toMatchObject({ models: [[id, "READY", run.runId]], outputs: [id] });
    // MLflow adds its own registered_model_meta beside what was uploaded when it downloads a logged model.
    expect(seen.files).toEqual(expect.arrayContaining(["MLmodel", "data/w.bin"]));
  });
});

describe("datasets and experiment tags in a file store", () => {
  it("writes MLflow's layout of datasets and run inputs, and tags an experiment MLflow created; no logged models", async () => {
    const dir = await makeTempDir("ms-file-models-");
    temps.push(dir);
    const root = path.join(dir, "mlruns");
    const tracker = createTracker(root, { env: {} });
    await tracker.getOrCreateExperiment("Default");
    await expectKindAdded(tracker, `file:${root}`);
    const experimentId = await expectDatasetInput(tracker, `file:${root}`);
    const run = await tracker.startRun({ experimentId });
    expect(await tracker.createLoggedModel({ experimentId, name: "model", sourceRunId: run.runId })).toBeUndefined();
    expect(await tracker.searchLoggedModels([experimentId])).toEqual([]);
  });
});
