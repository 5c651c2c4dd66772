/**
 * Test support: one realistic tracking session (a parent run with two nested step runs, params,
 * stepped metrics including NaN and infinities, enough params/tags/metrics to need several
 * log-batch requests, and file and directory artifacts), logged through a `Tracker`, and a
 * field-by-field comparison of those runs with what MLflow's Python client reads.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { TAGS } from "../tags.js";
import type { Tracker } from "../types.js";
import { makeTempDir, pyNumber, type PyReadResult } from "./mlflow-python.js";

export interface Scenario {
  experimentName: string;
  experimentId: string;
  parentId: string;
  etlId: string;
  alsId: string;
  lossSteps: number;
}

export const LOSS_STEPS = 2500;
export const MANY = 250;

export async function logScenario(tracker: Tracker, experimentName: string): Promise<Scenario> {
  const exp = await tracker.getOrCreateExperiment(experimentName);
  const parent = await tracker.startRun({ experimentId: exp.experimentId, runName: "pipeline", tags: { "ms.pipeline": "multistep" } });
  const etl = await tracker.startRun({
    experimentId: exp.experimentId,
    runName: "etl",
    parentRunId: parent.runId,
    tags: { [TAGS.step]: "etl" },
  });
  await tracker.logParams(etl.runId, { "max-row-limit": 100000, ratings_csv: "/data/ratings.csv", "dedupe enabled": true });
  await tracker.logMetrics(etl.runId, [{ key: "rows", value: 100836, timestamp: 1_700_000_000_000 }]);
  const src = await makeTempDir("ms-scenario-");
  await fs.mkdir(path.join(src, "ratings/part"), { recursive: true });
  await fs.writeFile(path.join(src, "ratings/manifest.json"), JSON.stringify({ kind: "ratings" }));
  await fs.writeFile(path.join(src, "ratings/part/0.bin"), Buffer.alloc(4096, 7));
  await fs.writeFile(path.join(src, "summary.txt"), "rows=100836\n");
  await tracker.logArtifacts(etl.runId, path.join(src, "ratings"), "ratings");
  await tracker.logArtifacts(etl.runId, path.join(src, "summary.txt"));
  await tracker.endRun(etl.runId, "FINISHED");

  const als = await tracker.startRun({
    experimentId: exp.experimentId,
    runName: "als",
    parentRunId: parent.runId,
    tags: { [TAGS.step]: "als" },
  });
  const many: Record<string, string> = {};
  for (let i = 0; i < MANY; i++) many[`grid/p${String(i).padStart(3, "0")}`] = `v${i}`;
  await tracker.logParams(als.runId, { rank: 10, "reg-param": 0.1, ...many });
  const manyTags: Record<string, string> = {};
  for (let i = 0; i < 150; i++) manyTags[`t${i}`] = `tag value ${i}`;
  await tracker.setTags(als.runId, manyTags);
  const t0 = 1_700_000_000_000;
  await tracker.logMetrics(
    als.runId,
    Array.from({ length: LOSS_STEPS }, (_, i) => ({ key: "train/loss", value: 1 / (i + 1), step: i, timestamp: t0 + i })),
  );
  await tracker.logMetrics(als.runId, [
    { key: "weird", value: Number.NaN, step: 0, timestamp: t0 },
    { key: "weird", value: Number.POSITIVE_INFINITY, step: 1, timestamp: t0 },
    { key: "weird", value: Number.NEGATIVE_INFINITY, step: 2, timestamp: t0 },
    { key: "nan_last", value: Number.NaN, step: 5, timestamp: t0 },
    { key: "test_mse", value: 0.8125, step: 0, timestamp: t0 },
  ]);
  await tracker.endRun(als.runId, "FINISHED");
  await tracker.endRun(parent.runId, "FINISHED");
  await fs.rm(src, { recursive: true, force: true });
  return {
    experimentName,
    experimentId: exp.experimentId,
    parentId: parent.runId,
    etlId: etl.runId,
    alsId: als.runId,
    lossSteps: LOSS_STEPS,
  };
}

/**
 * Equal as MLflow stores them. With `sqlInfinity`, +-Infinity on our side also matches
 * +-1.7976931348623157e308, which is how MLflow's SQL store keeps infinities.
 */
function same(theirs: number, ours: number, sqlInfinity = false): boolean {
  if (Object.is(theirs, ours) || (Number.isNaN(theirs) && Number.isNaN(ours))) return true;
  return sqlInfinity && !Number.isFinite(ours) && !Number.isNaN(ours) && theirs === Math.sign(ours) * Number.MAX_VALUE;
}

/** Asserts that what MLflow's client read equals, field by field, what our tracker reports and what was logged. */
export async function expectPythonSeesScenario(
  tracker: Tracker,
  s: Scenario,
  py: PyReadResult,
  options: { compareArtifactUri?: boolean; sqlInfinity?: boolean } = {},
): Promise<void> {
  expect(py.experiment).toMatchObject({ experiment_id: s.experimentId, name: s.experimentName, lifecycle_stage: "active" });
  expect(py.runs.map((r) => r.info.run_id).sort()).toEqual([s.parentId, s.etlId, s.alsId].sort());
  for (const pr of py.runs) {
    const ours = await tracker.getRun(pr.info.run_id);
    expect(pr.info).toEqual({
      run_id: ours.info.runId,
      run_name: ours.info.runName,
      experiment_id: ours.info.experimentId,
      status: ours.info.status,
      start_time: ours.info.startTime,
      end_time: ours.info.endTime,
      artifact_uri: options.compareArtifactUri === false ? pr.info.artifact_uri : ours.info.artifactUri,
      user_id: ours.info.userId,
    });
    expect(pr.params).toEqual(ours.params);
    expect(pr.tags).toEqual(ours.tags);
    expect(Object.keys(pr.metrics).sort()).toEqual(Object.keys(ours.metrics).sort());
    for (const [key, value] of Object.entries(pr.metrics)) {
      expect(
        same(pyNumber(value), ours.metrics[key].value, options.sqlInfinity),
        `latest ${key}: python ${value} vs ours ${ours.metrics[key].value}`,
      ).toBe(true);
      const history = await tracker.getMetricHistory(pr.info.run_id, key);
      const theirs = pr.history[key]
        .map((m) => ({ ...m, value: pyNumber(m.value) }))
        .sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
      const mine = history
        .map((m) => ({ value: m.value, step: m.step, timestamp: m.timestamp }))
        .sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
      expect(theirs).toHaveLength(mine.length);
      theirs.forEach((m, i) => {
        expect(m.step).toBe(mine[i].step);
        expect(m.timestamp).toBe(mine[i].timestamp);
        expect(same(m.value, mine[i].value, options.sqlInfinity), `${key}[${i}]: python ${m.value} vs ours ${mine[i].value}`).toBe(true);
      });
    }
    expect(pr.artifacts.map((a) => ({ path: a.path, size: a.size }))).toEqual(
      (await tracker.listArtifacts(pr.info.run_id)).map((a) => ({ path: a.path, size: a.fileSize ?? null })),
    );
  }

  // And against what was logged, not only against our own reading of it.
  const byId = new Map(py.runs.map((r) => [r.info.run_id, r]));
  const parent = byId.get(s.parentId)!;
  const etl = byId.get(s.etlId)!;
  const als = byId.get(s.alsId)!;
  expect(parent.info.run_name).toBe("pipeline");
  expect(parent.tags["ms.pipeline"]).toBe("multistep");
  for (const child of [etl, als]) {
    expect(child.tags[TAGS.parent]).toBe(s.parentId);
    expect(child.info.status).toBe("FINISHED");
  }
  expect(etl.params).toEqual({ "max-row-limit": "100000", ratings_csv: "/data/ratings.csv", "dedupe enabled": "true" });
  expect(etl.metrics.rows).toBe(100836);
  expect(etl.artifacts).toEqual([
    { path: "ratings/manifest.json", size: 18 },
    { path: "ratings/part/0.bin", size: 4096 },
    { path: "summary.txt", size: 12 },
  ]);
  expect(Object.keys(als.params)).toHaveLength(MANY + 2);
  expect(als.params["grid/p249"]).toBe("v249");
  expect(als.tags.t149).toBe("tag value 149");
  expect(als.history["train/loss"].map((m) => m.step).sort((a, b) => a - b)).toEqual(Array.from({ length: s.lossSteps }, (_, i) => i));
  expect(pyNumber(als.metrics["train/loss"])).toBeCloseTo(1 / s.lossSteps, 12);
  expect(pyNumber(als.metrics.nan_last)).toBeNaN();
  expect(pyNumber(als.metrics.test_mse)).toBe(0.8125);
  const weird = als.history.weird.sort((a, b) => a.step - b.step).map((m) => pyNumber(m.value));
  expect(weird[0]).toBeNaN();
  // MLflow's SQL store keeps +-inf as +-1.7976931348623157e308; its file store keeps inf.
  expect([Infinity, Number.MAX_VALUE]).toContain(weird[1]);
  expect([-Infinity, -Number.MAX_VALUE]).toContain(weird[2]);
}
