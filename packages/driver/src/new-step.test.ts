/**
 * Adding a step is its package plus one line of the step list: a popularity model defined with
 * `defineStep` alone (src/__fixtures__/popularity-step.ts, its own "popularity" artifact kind)
 * runs after the pipeline's steps, reading the etl step's ratings matched by kind; it is cached
 * on the second run, its parameters are tracked under their -P names, its metrics reach
 * tracking under its own entry point, and its headline is its line of the run's summary. No
 * contracts, driver or CLI code knows its name.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createTracker } from "@ms/tracking";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POPULARITY_FILE, popularityStep } from "./__fixtures__/popularity-step.js";
import { runPipeline, type PipelineReport, type RunPipelineOptions } from "./pipeline.js";
import { PIPELINE } from "./steps.js";
import { formatReport } from "./summary.js";

let root: string;
let options: RunPipelineOptions;
let first: PipelineReport;
let second: PipelineReport;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-new-step-"));
  options = {
    dataset: "synthetic",
    params: { synthetic_rows: "3000", als_max_iter: "1", als_rank: "2", keras_epochs: "1", keras_features: "seed", popularity_prior: "3" },
    cacheDir: path.join(root, "cache"),
    trackingUri: path.join(root, "mlruns"),
    report: false,
    steps: [...PIPELINE, popularityStep],
    env: {},
  };
  first = await runPipeline(options);
  second = await runPipeline(options);
}, 240_000);
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("a step added by one line of the step list", () => {
  it("runs on the etl step's ratings, matched by kind, and publishes its own kind", () => {
    expect(first.steps.map((s) => s.step)).toEqual(["download", "etl", "als", "fm", "keras", "rank", "popularity"]);
    const popularity = first.steps[6];
    expect(popularity.cached).toBe(false);
    expect(popularity.outputs.model).toMatchObject({ kind: "popularity", dir: path.join(root, "cache", "objects", popularity.key) });
    expect(popularity.metrics.movies).toBeGreaterThan(1);
    expect(popularity.metrics.test_rmse).toBeGreaterThan(0);
    expect(popularity.metrics.test_rmse).toBeLessThan(2);
    expect(POPULARITY_FILE).toBe("popularity.json");
  });

  it("is served from the cache on the second run", () => {
    expect(second.steps.map((s) => [s.step, s.cached])).toEqual([
      ["download", true],
      ["etl", true],
      ["als", true],
      ["fm", true],
      ["keras", true],
      ["rank", true],
      ["popularity", true],
    ]);
    expect(second.steps[6].key).toBe(first.steps[6].key);
  });

  it("logs its parameters under their -P names and its metrics to tracking", async () => {
    const tracker = createTracker(options.trackingUri);
    const parent = await tracker.getRun(first.runId);
    expect(parent.params.popularity_prior).toBe("3");
    expect(parent.params.popularity_split_prop).toBe("0.8");
    expect(Number(parent.metrics.popularity_test_rmse.value)).toBeCloseTo(first.steps[6].metrics.test_rmse as number, 10);
    const child = await tracker.getRun(first.steps[6].runId);
    expect(child.params).toMatchObject({ popularity_prior: "3", popularity_seed: "42" });
    expect(Number(child.metrics.test_rmse.value)).toBeCloseTo(first.steps[6].metrics.test_rmse as number, 10);
    expect(child.tags["ms.cache.key"]).toBe(first.steps[6].key);
    expect(child.tags["mlflow.project.entryPoint"]).toBe("train_popularity");
    expect(child.tags["mlflow.runName"]).toBe("train_popularity");
    const cachedChild = await tracker.getRun(second.steps[6].runId);
    expect(cachedChild.tags["ms.cache.hit"]).toBe("true");
    expect(Number(cachedChild.metrics.test_rmse.value)).toBeCloseTo(first.steps[6].metrics.test_rmse as number, 10);
  });

  it("shows its own headline on its line of the run's summary", () => {
    const { test_rmse, movies } = first.steps[6].metrics;
    const line = formatReport(first, { steps: options.steps })
      .split("\n")
      .find((l) => l.startsWith("popularity"));
    expect(line).toMatch(
      new RegExp(
        `^popularity +no +[\\d.]+ +${first.steps[6].key.slice(0, 12)} +test_rmse=${Number(test_rmse?.toPrecision(4))} movies=${movies} \\(shrunk means\\)$`,
      ),
    );
    // The pipeline's own steps keep theirs.
    expect(formatReport(first, { steps: options.steps })).toMatch(/\netl +no +[\d.]+ +[0-9a-f]{12} +rows=\d+/);
  });

  it("changes only its own key when only its parameter changes", async () => {
    const third = await runPipeline({ ...options, params: { ...options.params, popularity_prior: "10" } });
    expect(third.steps.map((s) => s.cached)).toEqual([true, true, true, true, true, true, false]);
    expect(third.steps[6].key).not.toBe(first.steps[6].key);
  }, 120_000);
});
