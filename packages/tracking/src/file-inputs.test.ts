/**
 * The file store's run inputs and experiment tags set only when absent, on a temp directory: MLflow's
 * file layout and ids (md5 of name + digest, of dataset id + run id), a dataset logged twice or from
 * two runs written once, bad datasets refused before anything is written, no logged models.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BadParameterError } from "@ms/contracts";
import { afterAll, describe, expect, it } from "vitest";
import { parseMeta } from "./meta-yaml.js";
import { createTracker } from "./tracker.js";
import type { DatasetInput } from "./types.js";

const temps: string[] = [];
afterAll(async () => {
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});
async function store() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ms-file-inputs-"));
  temps.push(dir);
  const root = path.join(dir, "mlruns");
  return { root, tracker: createTracker(root, { env: {} }) };
}
const md5 = (...parts: string[]) => parts.reduce((h, p) => h.update(p), createHash("md5")).digest("hex");

const dataset: DatasetInput = {
  name: "ml-latest-small",
  digest: "89124979914699b2a84a7c14f1f8e10af2b8",
  sourceType: "local",
  source: '{"uri": "file:///data/ratings.csv"}',
  schema: '{"mlflow_colspec": []}',
  profile: '{"num_rows": 3}',
  context: "training",
};

describe("file store datasets", () => {
  it("writes the dataset once per experiment and one input per run, in MLflow's layout", async () => {
    const { root, tracker } = await store();
    const exp = await tracker.getOrCreateExperiment("e");
    const a = await tracker.startRun({ experimentId: exp.experimentId });
    const b = await tracker.startRun({ experimentId: exp.experimentId });
    await tracker.logInputs(a.runId, [dataset]);
    await tracker.logInputs(a.runId, [dataset]);
    await tracker.logInputs(b.runId, [dataset]);
    const datasetId = md5(dataset.name, dataset.digest);
    const expDir = path.join(root, exp.experimentId);
    expect(await fs.readdir(path.join(expDir, "datasets"))).toEqual([datasetId]);
    expect(parseMeta(await fs.readFile(path.join(expDir, "datasets", datasetId, "meta.yaml"), "utf8"))).toEqual({
      digest: dataset.digest,
      name: dataset.name,
      profile: dataset.profile,
      schema: dataset.schema,
      source: dataset.source,
      source_type: "local",
    });
    for (const run of [a, b]) {
      const inputs = path.join(expDir, run.runId, "inputs");
      expect(await fs.readdir(inputs)).toEqual([md5(datasetId, run.runId)]);
      const text = await fs.readFile(path.join(inputs, md5(datasetId, run.runId), "meta.yaml"), "utf8");
      expect(text).toContain(`source_id: ${datasetId}\nsource_type: DATASET\ntags:\n  mlflow.data.context: training\n`);
    }
    // The runs are still read and searched as before (inputs/ is no key directory).
    expect((await tracker.searchRuns({ experimentIds: [exp.experimentId] })).runs).toHaveLength(2);
  });

  it("refuses a bad dataset before writing anything; has no logged models", async () => {
    const { root, tracker } = await store();
    const exp = await tracker.getOrCreateExperiment("e");
    const run = await tracker.startRun({ experimentId: exp.experimentId });
    for (const bad of [{ digest: "d".repeat(37) }, { source: "not json" }, { name: "" }]) {
      await expect(tracker.logInputs(run.runId, [{ ...dataset, ...bad }])).rejects.toBeInstanceOf(BadParameterError);
    }
    await expect(fs.stat(path.join(root, exp.experimentId, "datasets"))).rejects.toThrow();
    expect(await tracker.createLoggedModel({ experimentId: exp.experimentId, name: "model" })).toBeUndefined();
    await expect(tracker.finalizeLoggedModel("m-0123456789abcdef0123456789abcdef", "READY")).rejects.toBeInstanceOf(BadParameterError);
  });

  it("sets an experiment tag only when the experiment has none of that key", async () => {
    const { root, tracker } = await store();
    const exp = await tracker.getOrCreateExperiment("e");
    expect(await tracker.ensureExperimentTag(exp.experimentId, "team", "a")).toBe(true);
    expect(await tracker.ensureExperimentTag(exp.experimentId, "team", "b")).toBe(false);
    expect(await fs.readFile(path.join(root, exp.experimentId, "tags", "team"), "utf8")).toBe("a");
  });
});
