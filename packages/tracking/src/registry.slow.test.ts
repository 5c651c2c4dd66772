/**
 * The model registry client against a real `mlflow server` (the slow project's globalSetup):
 * a registered model created once even when asked twice at the same time, versions from a run's
 * logged files, READY, an alias that moves to the newer version, unknown models, versions and
 * aliases read as absent, and MLflow's own Python client seeing the same registry.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { recordOf } from "@ms/contracts";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { openRegistry } from "./registry.js";
import { pythonJson } from "./testing/mlflow-python.js";
import { createTracker } from "./tracker.js";

const url = inject("mlflowUrl");
const venv = inject("mlflowVenv");
const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 20_000 } });
const registry = openRegistry(url, { env: {}, retry: { maxTotalMs: 20_000 } });
const unique = `${process.pid}-${Date.now()}`;
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ms-registry-"));
  await writeFile(path.join(dir, "MLmodel"), "flavors: {}\n");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A finished run with a file at artifact path model/; returns its id and the model's source URI. */
async function runWithModel(experimentId: string): Promise<{ runId: string; source: string }> {
  const run = await tracker.startRun({ experimentId, runName: "keras" });
  await tracker.logArtifacts(run.runId, dir, "model");
  await tracker.endRun(run.runId, "FINISHED");
  return { runId: run.runId, source: `${run.artifactUri}/model` };
}

describe("model registry against mlflow server", () => {
  it("registers versions, waits for READY, moves an alias, and MLflow's Python client agrees", async () => {
    const name = `ms-registry ${unique}`;
    const exp = await tracker.getOrCreateExperiment(`registry ${unique}`);
    expect(await registry.getRegisteredModel(name)).toBeUndefined();
    // Two processes registering the first version at once meet at one registered model.
    const [a, b] = await Promise.all([registry.ensureRegisteredModel(name), registry.ensureRegisteredModel(name)]);
    expect(a.name).toBe(name);
    expect(b.name).toBe(name);

    const first = await runWithModel(exp.experimentId);
    const v1 = await registry.waitUntilReady(name, await registry.createModelVersion({ name, ...first }));
    expect(v1).toMatchObject({ name, version: 1, status: "READY", runId: first.runId, source: first.source });
    await registry.setAlias(name, "champion", v1.version);
    expect((await registry.getModelVersionByAlias(name, "champion"))?.runId).toBe(first.runId);

    const second = await runWithModel(exp.experimentId);
    const v2 = await registry.waitUntilReady(name, await registry.createModelVersion({ name, ...second }));
    expect(v2.version).toBe(2);
    await registry.setAlias(name, "champion", v2.version);
    const aliased = await registry.getModelVersionByAlias(name, "champion");
    expect(aliased).toMatchObject({ version: 2, runId: second.runId, aliases: ["champion"] });
    expect((await registry.getRegisteredModel(name))?.aliases).toEqual({ champion: 2 });
    expect((await registry.getModelVersion(name, 1))?.aliases).toEqual([]);

    const seen = await pythonJson(
      venv,
      recordOf(v.string()),
      [
        "import json,sys; from mlflow import MlflowClient",
        "c = MlflowClient(sys.argv[1]); mv = c.get_model_version_by_alias(sys.argv[2], 'champion')",
        "print(json.dumps({'version': str(mv.version), 'run_id': mv.run_id, 'status': mv.status, 'uri': c.get_model_version_download_uri(sys.argv[2], mv.version)}))",
      ].join("\n"),
      [url, name],
    );
    expect(seen).toEqual({ version: "2", run_id: second.runId, status: "READY", uri: second.source });
  });

  it("unknown models, versions and aliases are absent, not errors", async () => {
    const name = `ms-registry-absent ${unique}`;
    expect(await registry.getModelVersionByAlias(name, "champion")).toBeUndefined();
    expect(await registry.getModelVersion(name, 1)).toBeUndefined();
    await registry.ensureRegisteredModel(name);
    expect(await registry.getModelVersionByAlias(name, "champion")).toBeUndefined();
    expect(await registry.getModelVersion(name, 3)).toBeUndefined();
    expect((await registry.getRegisteredModel(name))?.aliases).toEqual({});
  });
});
