/**
 * `ms run` end to end through the built bin on small synthetic data: the JSON document, the
 * tracked runs, what the cache reuses when parameters change, damaged entries, and a read-only
 * or full cache directory (a test preload that fails the child's writes there, see fsFault).
 */
import { readFile, truncate, stat, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { createTracker } from "@ms/tracking";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, cachedOf, fsFault, listDir, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let cold: RunDoc;
beforeAll(async () => {
  box = await sandbox();
  cold = await runJson(SMALL, box);
});
afterAll(async () => box.dispose());

describe("ms run on an empty cache", () => {
  it("prints exactly { runId, steps: [download, etl, als, fm, keras, rank], report } with every step computed", () => {
    expect(Object.keys(cold).sort()).toEqual(["report", "runId", "steps"]);
    expect(cold.steps.map((s) => s.step)).toEqual(["download", "etl", "als", "fm", "keras", "rank"]);
    for (const s of cold.steps) {
      expect(Object.keys(s).sort()).toEqual(["cached", "key", "metrics", "outputs", "runId", "seconds", "source", "step"]);
      expect(s.cached).toBe(false);
      expect(s.source).toBe("computed");
      expect(s.key).toMatch(/^[0-9a-f]{64}$/);
      expect(s.seconds).toBeGreaterThan(0);
    }
  });

  it("reports every step's metrics", () => {
    const [download, etl, als, fm, keras] = cold.steps;
    expect(download.metrics.bytes).toBeGreaterThan(0);
    expect(etl.metrics.rows).toBe(4000);
    for (const k of ["training_nrows", "test_nrows", "train_rmse", "test_rmse", "train_loss"])
      expect(Number.isFinite(als.metrics[k]), k).toBe(true);
    expect(als.metrics.training_nrows + als.metrics.test_nrows).toBe(4000);
    for (const k of ["train_mse", "test_mse", "test_rmse", "epochs_run"]) expect(Number.isFinite(keras.metrics[k]), k).toBe(true);
    for (const k of ["test_rmse", "oof_rmse", "samples_full", "seconds"]) expect(Number.isFinite(fm.metrics[k]), k).toBe(true);
    expect(fm.metrics.fits).toBe(4);
  });

  it("hands each step's outputs to the next through cache entries named by key", async () => {
    const [, etl, als, , keras] = cold.steps;
    expect(etl.outputs.ratings.dir).toBe(path.join(box.cache, "objects", etl.key));
    expect(await listDir(etl.outputs.ratings.dir!)).toEqual(["entry.json", "manifest.json", "metrics.json", "ratings.parquet"]);
    expect(await listDir(als.outputs.factors.dir!)).toEqual([
      "entry.json",
      "item_factors.parquet",
      "manifest.json",
      "metrics.json",
      "user_factors.parquet",
    ]);
    expect(await listDir(keras.outputs.model.dir!)).toContain("model.json");
    const factorsManifest = JSON.parse(await readFile(path.join(als.outputs.factors.dir!, "manifest.json"), "utf8"));
    expect(factorsManifest.details.ratings.digest).toBe(etl.outputs.ratings.digest);
    expect(await listDir(path.join(box.cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(box.cache, "locks"))).toEqual([]);
  });

  it("tracks a parent run and one child per step with the seed's entry points, params, metrics and artifacts", async () => {
    const tracker = createTracker(box.mlruns);
    const parent = await tracker.getRun(cold.runId);
    expect(parent.info.status).toBe("FINISHED");
    expect(parent.params.als_max_iter).toBe("2");
    expect(parent.params.keras_hidden_units).toBe("20");
    expect(parent.tags["mlflow.source.git.commit"] ?? null).toBeNull(); // the sandbox is not a git checkout
    const entryPoints = ["load_raw_data", "etl_data", "als", "fm", "train_keras", "rank"];
    for (const [i, s] of cold.steps.entries()) {
      const child = await tracker.getRun(s.runId);
      expect(child.info.status).toBe("FINISHED");
      expect(child.tags["mlflow.parentRunId"]).toBe(cold.runId);
      expect(child.tags["mlflow.project.entryPoint"]).toBe(entryPoints[i]);
      expect(child.tags["mlflow.runName"]).toBe(entryPoints[i]);
      expect(child.tags["ms.cache.key"]).toBe(s.key);
      expect(child.tags["ms.cache.hit"]).toBe("false");
    }
    const als = await tracker.getRun(cold.steps[2].runId);
    expect(als.params.als_rank).toBe("4");
    expect(Number(als.metrics.test_rmse.value)).toBeCloseTo(cold.steps[2].metrics.test_rmse, 10);
    // Per-iteration series keep their steps.
    expect((await tracker.getMetricHistory(cold.steps[2].runId, "train_loss")).map((m) => m.step).sort()).toEqual([1, 2]);
    const files = (await tracker.listArtifacts(cold.steps[4].runId)).map((a) => a.path);
    expect(files).toEqual(expect.arrayContaining(["manifest.json", "model.json"]));
    expect((await tracker.listArtifacts(cold.steps[1].runId)).map((a) => a.path)).toContain("ratings.parquet");
  });
});

describe("ms run with a warm cache", () => {
  it("hits every step on an identical second run and links each child to the run that produced the entry", async () => {
    const warm = await runJson(SMALL, box);
    expect(cachedOf(warm)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true, rank: true });
    expect(warm.steps.map((s) => s.key)).toEqual(cold.steps.map((s) => s.key));
    expect(warm.steps.map((s) => s.metrics)).toEqual(cold.steps.map((s) => s.metrics));
    const tracker = createTracker(box.mlruns);
    for (const [i, s] of warm.steps.entries()) {
      const child = await tracker.getRun(s.runId);
      expect(child.tags["ms.cache.hit"]).toBe("true");
      expect(child.tags["ms.cache.producedByRun"]).toBe(cold.steps[i].runId);
    }
    // A hit logs only the small files; the producing run has the data.
    expect((await tracker.listArtifacts(warm.steps[1].runId)).map((a) => a.path).sort()).toEqual(["entry.json", "manifest.json"]);
  });

  it("a read-only cache directory still serves a fully cached run", async () => {
    const doc = await runJson(SMALL, box, fsFault("EROFS"));
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true, rank: true });
  });

  it("reruns only keras when keras_hidden_units changes: the fm step's fits are a cache hit", async () => {
    const doc = await runJson([...SMALL, "-P", "keras_hidden_units=7"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: true, fm: true, keras: false, rank: true });
    expect(doc.steps[3].key).toBe(cold.steps[3].key);
    expect(doc.steps[4].key).not.toBe(cold.steps[4].key);
  });

  it("reruns fm and keras when fm_max_samples changes", async () => {
    const doc = await runJson([...SMALL, "-P", "fm_max_samples=30"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: true, fm: false, keras: false, rank: true });
    // The cap bounds the sweeps the data chooses (the full fit runs the folds' mean count).
    expect(doc.steps[3].metrics.samples_full).toBeGreaterThan(20);
    expect(doc.steps[3].metrics.samples_full).toBeLessThanOrEqual(30);
  });

  it("does not rerun anything when only als_num_threads changes (it is not in the key)", async () => {
    const doc = await runJson([...SMALL, "-P", "als_num_threads=1"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true, rank: true });
  });

  it("reruns etl and everything after it when max_row_limit changes etl's output", async () => {
    const doc = await runJson([...SMALL, "-P", "max_row_limit=3000"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: false, als: false, fm: false, keras: false, rank: false });
    expect(doc.steps[1].metrics.rows).toBe(3000);
    expect(doc.steps[1].outputs.ratings.digest).not.toBe(cold.steps[1].outputs.ratings.digest);
  });

  it("reruns only etl when a max_row_limit above the row count leaves etl's output identical", async () => {
    for (const limit of ["-1", "50000"]) {
      const doc = await runJson([...SMALL, "-P", `max_row_limit=${limit}`], box);
      expect(doc.steps[1].key).not.toBe(cold.steps[1].key);
      expect(doc.steps[1].outputs.ratings.digest).toBe(cold.steps[1].outputs.ratings.digest);
      expect(cachedOf(doc).als).toBe(true);
      expect(cachedOf(doc).keras).toBe(true);
    }
  });

  it("accepts -P KEY VALUE with a negative value as well as KEY=VALUE", async () => {
    const doc = await runJson([...SMALL, "-P", "max_row_limit", "-1"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true, rank: true });
  });

  it("--force STEP recomputes that step and replaces its entry", async () => {
    const doc = await runJson([...SMALL, "--force", "als"], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: true, als: false, fm: true, keras: true, rank: true });
    expect(doc.steps[2].key).toBe(cold.steps[2].key);
    const entry = JSON.parse(await readFile(path.join(box.cache, "objects", doc.steps[2].key, "entry.json"), "utf8"));
    expect(entry.producedByRun).toBe(doc.steps[2].runId);
  });

  it("--no-cache recomputes every step under the same keys", async () => {
    const doc = await runJson([...SMALL, "--no-cache"], box);
    expect(cachedOf(doc)).toEqual({ download: false, etl: false, als: false, fm: false, keras: false, rank: false });
    expect(doc.steps.slice(0, 3).map((s) => s.key)).toEqual(cold.steps.slice(0, 3).map((s) => s.key));
    expect(doc.steps[1].outputs.ratings.digest).toBe(cold.steps[1].outputs.ratings.digest);
  });

  it("detects a truncated cache file, recomputes the entry and reuses what follows", async () => {
    const parquet = path.join(box.cache, "objects", cold.steps[1].key, "ratings.parquet");
    await truncate(parquet, 100);
    const verify = await ms(["cache", "verify"], box);
    expect(verify.code).toBe(5);
    expect(verify.stderr).toContain(cold.steps[1].key);
    const doc = await runJson(SMALL, box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: false, als: true, fm: true, keras: true, rank: true });
    expect((await stat(parquet)).size).toBeGreaterThan(100);
    expect((await ms(["cache", "verify"], box)).code).toBe(0);
  });
});

describe("ms run errors", () => {
  it("rejects an unknown parameter, suggesting the closest name rather than listing them all, with exit code 2", async () => {
    const r = await ms(["run", ...SMALL, "-P", "als_rnak=3"], box);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("parameter als_rnak: unknown parameter; did you mean als_rank?");
    expect(r.stderr).not.toContain("keras_hidden_units");
  });

  it("rejects ill-typed and out-of-range values under the driver's parameter names", async () => {
    const typed = await ms(["run", ...SMALL, "-P", "als_max_iter=ten"], box);
    expect(typed.code).toBe(2);
    expect(typed.stderr).toContain("als_max_iter");
    const range = await ms(["run", ...SMALL, "-P", "keras_hidden_units=0", "--json"], box);
    expect(range.code).toBe(2);
    expect(JSON.parse(range.stdout).error.message).toMatch(/keras_hidden_units/);
    const bool = await ms(["run", ...SMALL, "-P", "als_nonnegative=maybe"], box);
    expect(bool.code).toBe(2);
    expect(bool.stderr).toContain("als_nonnegative");
  });

  it("a read-only cache directory: a clear storage error, exit 8, nothing written", async () => {
    const other = await sandbox();
    try {
      const r = await ms(["run", ...SMALL], other, fsFault("EROFS"));
      expect(r.code).toBe(8);
      expect(r.stderr).toMatch(/cache directory .* is read-only/);
      expect(await listDir(path.join(other.cache, "objects"))).toEqual([]);
    } finally {
      await other.dispose();
    }
  });

  it("a full disk when publishing: exit 8, the step's run FAILED, no entry, no temp files, no lock", async () => {
    const other = await sandbox();
    try {
      const r = await ms(["run", ...SMALL, "--json"], other, fsFault("ENOSPC:publish"));
      expect(r.code).toBe(8);
      expect(JSON.parse(r.stdout).error.code).toBe("STORAGE");
      expect(r.stderr).toMatch(/is full/);
      expect(await listDir(path.join(other.cache, "objects"))).toEqual([]);
      expect(await listDir(path.join(other.cache, "tmp"))).toEqual([]);
      expect(await listDir(path.join(other.cache, "locks"))).toEqual([]);
      const tracker = createTracker(other.mlruns);
      const exp = await tracker.getExperimentByName("Default");
      const runs = (await tracker.searchRuns({ experimentIds: [exp!.experimentId] })).runs;
      expect(runs.map((x) => x.info.status).sort()).toEqual(["FAILED", "FAILED"]);
    } finally {
      await other.dispose();
    }
  });

  it("the default dataset offline with no mirror: a network error suggesting --dataset synthetic", async () => {
    // A closed loopback port stands in for being offline, so the test never downloads.
    const r = await ms(["run"], box, { MS_MOVIELENS_BASE_URL: "http://127.0.0.1:9" });
    expect(r.code).toBe(6);
    expect(r.stderr).toContain("ml-latest-small.zip");
    expect(r.stderr).toContain("--dataset synthetic");
  });

  it("a failing step ends its child run and the parent as FAILED with the step's exit code", async () => {
    const csv = path.join(box.root, "bad.csv");
    await writeFile(csv, "userId,movieId,rating,timestamp\n1,2,4.0,100\n1,3,banana,100\n");
    const r = await ms(["run", "--ratings-csv", csv, "--json"], box);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("bad.csv");
    const tracker = createTracker(box.mlruns);
    const exp = await tracker.getExperimentByName("Default");
    const runs = (await tracker.searchRuns({ experimentIds: [exp!.experimentId], tags: { "ms.step": "etl" } })).runs;
    const failed = runs.filter((x) => x.info.status === "FAILED");
    expect(failed).toHaveLength(1);
    const parent = await tracker.getRun(failed[0].tags["mlflow.parentRunId"]);
    expect(parent.info.status).toBe("FAILED");
  });

  it("a missing --ratings-csv file is bad input naming it (exit 3, as ms-etl says)", async () => {
    const r = await ms(["run", "--ratings-csv", path.join(box.root, "nope.csv")], box);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("nope.csv");
  });

  it("a FIFO given as the ratings file is refused at once, not waited on (exit 3)", async () => {
    const fifo = path.join(box.root, "ratings.fifo");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    const r = await ms(["run", "--ratings-csv", fifo], box);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${fifo}: is not a regular file`);
  });

  it("a directory given as the ratings file is bad input naming it (exit 3)", async () => {
    const r = await ms(["run", "--ratings-csv", box.root], box);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${box.root}: is a directory`);
  });
});

describe("ms help", () => {
  it("ms --help, ms run --help and ms cache --help exit 0", async () => {
    const top = await ms(["--help"], box);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/ms run/);
    const run = await ms(["run", "--help"], box);
    expect(run.code).toBe(0);
    for (const p of ["max_row_limit", "als_num_threads", "keras_hidden_units", "synthetic_rows", "Exit codes"])
      expect(run.stdout).toContain(p);
    expect(run.stdout).toMatch(/NOT in the cache key/);
    expect((await ms(["cache", "--help"], box)).code).toBe(0);
    expect((await ms(["runs", "--help"], box)).code).toBe(0);
    expect((await ms(["bogus"], box)).code).toBe(2);
  });
});
