/**
 * `ms run` as MLflow's users know it, on the file store through the built bin: the parent run
 * carries step-prefixed final metrics, a cached child run logs the same metrics and history as
 * the run that computed it, `MLFLOW_RUN_ID` / `MLFLOW_EXPERIMENT_ID` are honoured (the run MLflow
 * created is the parent), a damaged history is recomputed, and `--<param> value` (how `mlflow
 * run` passes undeclared parameters) works like `-P`.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ownerText } from "@ms/cache";
import { createTracker, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAGS, type Metric, type Tracker } from "@ms/tracking";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, cachedOf, listDir, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let tracker: Tracker;
let cold: RunDoc;
let warm: RunDoc;

beforeAll(async () => {
  box = await sandbox("ms-driver-mlflow-env-");
  tracker = createTracker(box.mlruns, { env: {} });
  cold = await runJson(SMALL, box);
  warm = await runJson(SMALL, box);
});
afterAll(async () => box.dispose());

/** Every metric of a run with its full history, without timestamps. */
async function allHistory(runId: string): Promise<Record<string, { step: number; value: number }[]>> {
  const run = await tracker.getRun(runId);
  const out: Record<string, { step: number; value: number }[]> = {};
  for (const key of Object.keys(run.metrics).sort()) {
    out[key] = (await tracker.getMetricHistory(runId, key))
      .map((m: Metric) => ({ step: m.step, value: m.value }))
      .sort((a, b) => a.step - b.step || a.value - b.value);
  }
  return out;
}

describe("the parent run", () => {
  it("logs every step's final metrics under step-prefixed names", async () => {
    for (const doc of [cold, warm]) {
      const parent = await tracker.getRun(doc.runId);
      expect(parent.metrics.als_test_rmse.value).toBeCloseTo(doc.steps[2].metrics.test_rmse, 10);
      expect(parent.metrics.keras_test_rmse.value).toBeCloseTo(doc.steps[4].metrics.test_rmse, 10);
      expect(parent.metrics.etl_rows.value).toBe(4000);
      expect(parent.metrics.download_bytes.value).toBe(doc.steps[0].metrics.bytes);
    }
  });

  it("lives in an experiment tagged for MLflow 3's UI", async () => {
    const parent = await tracker.getRun(cold.runId);
    expect(await readFile(path.join(box.mlruns, parent.info.experimentId, "tags", EXPERIMENT_KIND_TAG), "utf8")).toBe(EXPERIMENT_KIND);
  });
});

describe("a cached child run", () => {
  it("logs the same metrics and per-iteration/per-epoch history as the run that computed it", async () => {
    expect(cachedOf(warm)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true });
    for (const [i, s] of warm.steps.entries()) {
      const computed = await allHistory(cold.steps[i].runId);
      expect(await allHistory(s.runId), s.step).toEqual(computed);
    }
    const als = await allHistory(warm.steps[2].runId);
    expect(als.train_loss.map((p) => p.step)).toEqual([1, 2]);
    expect(Object.keys(await allHistory(warm.steps[4].runId))).toEqual(expect.arrayContaining(["loss", "val_loss", "test_rmse"]));
  });

  it("keeps the history in the entry with its digest in entry.json; a damaged history recomputes the step", async () => {
    const dir = path.join(box.cache, "objects", cold.steps[2].key);
    expect(await listDir(dir)).toContain("metrics.json");
    const entry = JSON.parse(await readFile(path.join(dir, "entry.json"), "utf8"));
    expect(entry.history).toMatch(/^sha256:[0-9a-f]{64}$/);
    const file = path.join(dir, "metrics.json");
    await writeFile(file, (await readFile(file, "utf8")).replace('"train_loss"', '"train_lost"'));
    const r = await ms(["run", ...SMALL, "--json"], box);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as RunDoc;
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: false, fm: true, keras: true });
    expect(r.stderr).toContain("metric history is damaged");
    const untimed = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !k.includes("seconds")));
    expect(untimed(await allHistory(doc.steps[2].runId))).toEqual(untimed(await allHistory(cold.steps[2].runId)));
  });
});

describe("under mlflow run", () => {
  it("MLFLOW_RUN_ID: the existing run becomes the parent; no second top-level run is created", async () => {
    const exp = await tracker.getOrCreateExperiment("project");
    const made = await tracker.startRun({
      experimentId: exp.experimentId,
      runName: "from-mlflow",
      tags: { "mlflow.project.entryPoint": "main" },
    });
    await tracker.logParams(made.runId, { als_max_iter: "2", keras_hidden_units: "20" });
    const doc = await runJson(SMALL, box, { MLFLOW_RUN_ID: made.runId, MLFLOW_EXPERIMENT_ID: exp.experimentId });
    expect(doc.runId).toBe(made.runId);
    const runs = (await tracker.searchRuns({ experimentIds: [exp.experimentId] })).runs;
    expect(runs.filter((r) => !r.tags["mlflow.parentRunId"]).map((r) => r.info.runId)).toEqual([made.runId]);
    expect(runs.filter((r) => r.tags["mlflow.parentRunId"] === made.runId)).toHaveLength(6);
    const parent = await tracker.getRun(made.runId);
    expect(parent.info.status).toBe("FINISHED");
    expect(parent.info.runName).toBe("from-mlflow");
    expect(parent.params).toMatchObject({ als_max_iter: "2", als_rank: "4" });
    expect(parent.metrics.keras_test_rmse.value).toBeCloseTo(doc.steps[4].metrics.test_rmse, 10);
  });

  it("MLFLOW_RUN_ID of a finished or unknown run: exit 2 naming it", async () => {
    const r = await ms(["run", ...SMALL], box, { MLFLOW_RUN_ID: cold.runId });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`MLFLOW_RUN_ID: run ${cold.runId}`);
    expect(r.stderr).toContain("FINISHED");
    const unknown = await ms(["run", ...SMALL], box, { MLFLOW_RUN_ID: "0123456789abcdef0123456789abcdef" });
    expect(unknown.code).toBe(2);
  });

  it("MLFLOW_RUN_ID of a RUNNING parent that another live ms process owns: exit 2; one whose owner is gone is adopted", async () => {
    const exp = await tracker.getOrCreateExperiment("owned");
    // This test process stands for the other live ms run: its identity is the parent's owner tag.
    const live = await tracker.startRun({ experimentId: exp.experimentId, tags: { [TAGS.owner]: ownerText() } });
    const r = await ms(["run", ...SMALL], box, { MLFLOW_RUN_ID: live.runId });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `MLFLOW_RUN_ID: run ${live.runId} is the parent of another ms run still in progress (process ${process.pid}`,
    );
    const children = await tracker.searchRuns({ experimentIds: [exp.experimentId], tags: { [TAGS.parent]: live.runId } });
    expect(children.runs).toEqual([]);
    // An owner that is gone (a crashed run) does not hold the run.
    const gone = JSON.stringify({ ...JSON.parse(ownerText()), pid: 2 ** 22 + 17 });
    const orphan = await tracker.startRun({ experimentId: exp.experimentId, tags: { [TAGS.owner]: gone } });
    expect((await ms(["run", ...SMALL], box, { MLFLOW_RUN_ID: orphan.runId })).code).toBe(0);
  });

  it("MLFLOW_EXPERIMENT_ID picks the experiment when --experiment is not given", async () => {
    const exp = await tracker.getOrCreateExperiment("by-id");
    const doc = await runJson(SMALL, box, { MLFLOW_EXPERIMENT_ID: exp.experimentId });
    expect((await tracker.getRun(doc.runId)).info.experimentId).toBe(exp.experimentId);
  });

  it("takes an undeclared MLproject parameter passed as --name value like -P name=value", async () => {
    const doc = await runJson([...SMALL, "--keras_hidden_units", "20", "--als_rank=4"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true });
  });

  it("a parameter error fails before any run is created, also under MLFLOW_EXPERIMENT_ID", async () => {
    const exp = await tracker.getOrCreateExperiment("bad-params");
    const r = await ms(["run", ...SMALL, "-P", "als_rank=zero"], box, { MLFLOW_EXPERIMENT_ID: exp.experimentId });
    expect(r.code).toBe(2);
    expect((await tracker.searchRuns({ experimentIds: [exp.experimentId] })).runs).toEqual([]);
  });
});
