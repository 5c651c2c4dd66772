/**
 * The evaluation protocols through the built `ms` bin: `-P split=kfold` runs every fold as its own
 * child run group (a second run is all cache hits), with `folds` and `summary` in `--json` and the
 * parent run's mean and std; split=time reuses etl across split_prop; `--test-ratings` with
 * split=file counts and scores cold test rows; with the fm step's time effects, the test file
 * re-scored through `ms predict --pairs` (its timestamp column read) and the report give the keras
 * step's test RMSE.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticRatings } from "@ms/etl";
import { createTracker, TAGS } from "@ms/tracking";
import { ms, runJson, sandbox, SMALL, type RunDoc, type Sandbox, type StepDoc } from "./__tests__/harness.js";

interface KfoldDoc extends RunDoc {
  folds: { fold: number; runId: string; steps: StepDoc[] }[];
  summary: Record<string, number>;
}

let box: Sandbox;
beforeAll(async () => {
  box = await sandbox("ms-driver-split-");
});
afterAll(async () => box.dispose());

const KFOLD = [...SMALL, "-P", "split=kfold", "-P", "folds=3"];

describe("ms run -P split=kfold", () => {
  let cold: KfoldDoc;
  beforeAll(async () => {
    cold = (await runJson(KFOLD, box)) as KfoldDoc;
  }, 300_000);

  it("runs the pipeline once per fold; the folds' test parts partition the ratings", () => {
    expect(cold.folds.map((f) => f.fold)).toEqual([1, 2, 3]);
    for (const f of cold.folds) expect(f.steps.map((s) => s.step)).toEqual(["download", "etl", "als", "fm", "keras", "rank", "ranking"]);
    const step = (f: KfoldDoc["folds"][number], name: string) => f.steps.find((s) => s.step === name) as StepDoc;
    // download and etl take no fold: one entry shared by every fold.
    expect(new Set(cold.folds.map((f) => step(f, "etl").key)).size).toBe(1);
    expect(new Set(cold.folds.map((f) => step(f, "als").key)).size).toBe(3);
    const rows = step(cold.folds[0], "etl").metrics.rows;
    const tested = cold.folds.reduce((n, f) => n + step(f, "als").metrics.test_nrows, 0);
    expect(tested).toBe(rows);
    for (const f of cold.folds) expect(step(f, "als").metrics.training_nrows + step(f, "als").metrics.test_nrows).toBe(rows);
    // The top-level steps are the last fold's (its model is the one served).
    expect(cold.steps.map((s) => s.key)).toEqual(cold.folds[2].steps.map((s) => s.key));
  });

  it("summarises every step metric by its mean and sample std over the folds", () => {
    const xs = cold.folds.map((f) => (f.steps.find((s) => s.step === "keras") as StepDoc).metrics.test_rmse);
    const mean = xs.reduce((a, b) => a + b, 0) / 3;
    const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / 2);
    expect(cold.summary.keras_test_rmse_mean).toBeCloseTo(mean, 12);
    expect(cold.summary.keras_test_rmse_std).toBeCloseTo(std, 12);
    expect(cold.summary.keras_test_rmse_std).toBeGreaterThan(0);
    // The ranking step's metrics too, under the step's prefix: every model's, at k = 10.
    const ndcg = cold.folds.map((f) => (f.steps.find((s) => s.step === "ranking") as StepDoc).metrics.keras_ndcg_at_10);
    const ndcgMean = ndcg.reduce((a, b) => a + b, 0) / 3;
    expect(cold.summary.ranking_keras_ndcg_at_10_mean).toBeCloseTo(ndcgMean, 12);
    expect(cold.summary.ranking_keras_ndcg_at_10_std).toBeCloseTo(Math.sqrt(ndcg.reduce((a, b) => a + (b - ndcgMean) ** 2, 0) / 2), 12);
    for (const model of ["als", "keras", "fm", "ranker", "popularity"])
      for (const metric of ["ndcg", "precision", "coverage"])
        for (const stat of ["mean", "std"]) expect(Number.isFinite(cold.summary[`ranking_${model}_${metric}_at_10_${stat}`])).toBe(true);
    for (const name of ["als_test_rmse", "als_test_cold_rows", "keras_test_cold_rows", "etl_rows"]) {
      expect(Number.isFinite(cold.summary[`${name}_mean`])).toBe(true);
      expect(Number.isFinite(cold.summary[`${name}_std`])).toBe(true);
    }
  });

  it("logs each fold as a child run tagged with its fold, holding that fold's step runs; the parent has the summary", async () => {
    const tracker = createTracker(box.mlruns, { env: {} });
    const parent = await tracker.getRun(cold.runId);
    expect(parent.metrics.keras_test_rmse_mean.value).toBeCloseTo(cold.summary.keras_test_rmse_mean, 10);
    expect(parent.metrics.keras_test_rmse_std.value).toBeCloseTo(cold.summary.keras_test_rmse_std, 10);
    expect(parent.params.fold).toBeUndefined();
    expect(parent.params.split).toBe("kfold");
    for (const f of cold.folds) {
      const group = await tracker.getRun(f.runId);
      expect(group.tags[TAGS.parent]).toBe(cold.runId);
      expect(group.tags[TAGS.fold]).toBe(String(f.fold));
      expect(group.params.fold).toBe(String(f.fold));
      const keras = f.steps.find((s) => s.step === "keras") as StepDoc;
      expect(group.metrics.keras_test_rmse.value).toBeCloseTo(keras.metrics.test_rmse, 10);
      for (const s of f.steps) expect((await tracker.getRun(s.runId)).tags[TAGS.parent]).toBe(f.runId);
    }
  });

  it("is all cache hits the second time, with the same summary", async () => {
    const warm = (await runJson(KFOLD, box)) as KfoldDoc;
    expect(warm.folds.flatMap((f) => f.steps.map((s) => s.cached))).toEqual(new Array(21).fill(true));
    expect(warm.summary).toEqual(cold.summary);
  }, 300_000);

  it("prints a table of the folds, and ms recommend serves the last fold's model", async () => {
    const text = await ms(["run", ...KFOLD], box);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/fold\s+run\s+als_test_rmse\s+fm_test_rmse\s+keras_test_rmse/);
    expect(text.stdout).toMatch(/\nmean\s+\d\.\d{4}\s+\d\.\d{4}/);
    const recs = await ms(["recommend", "--user", "3", "--top", "3", "--json"], box);
    expect(recs.code, recs.stderr).toBe(0);
  }, 300_000);

  it("refuses a fold beyond folds and a fold without kfold (exit 2, naming fold)", async () => {
    for (const args of [
      [...KFOLD, "-P", "fold=4"],
      [...SMALL, "-P", "fold=1"],
    ]) {
      const r = await ms(["run", ...args], box);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/fold/);
    }
  });
});

describe("ms run -P split=time", () => {
  it("tests each user's latest ratings; a new split_prop reuses the etl entry", async () => {
    const a = await runJson([...SMALL, "-P", "split=time"], box);
    const b = await runJson([...SMALL, "-P", "split=time", "-P", "split_prop=0.6"], box);
    const step = (doc: RunDoc, name: string) => doc.steps.find((s) => s.step === name) as StepDoc;
    expect(step(b, "etl").cached).toBe(true);
    expect(step(b, "etl").key).toBe(step(a, "etl").key);
    const share = (doc: RunDoc) => step(doc, "als").metrics.test_nrows / step(doc, "etl").metrics.rows;
    expect(share(a)).toBeGreaterThan(0.15);
    expect(share(a)).toBeLessThan(0.3);
    expect(share(b)).toBeGreaterThan(share(a) + 0.1);
  }, 300_000);
});

describe("ms run --test-ratings -P split=file", () => {
  it("trains on the main file, tests on the test file, and scores test rows of unseen users", async () => {
    const all = path.join(box.root, "all.csv");
    writeSyntheticRatings(all, { seed: 5, rows: 4000 });
    const lines = (await import("node:fs")).readFileSync(all, "utf8").trim().split("\n");
    const [header, ...rows] = lines;
    const base = rows.filter((_, i) => i % 10 !== 0);
    const test = rows.filter((_, i) => i % 10 === 0);
    const movie = base[0].split(",")[1];
    const cold = [`999999,${movie},4,1000`, `999999,${base[1].split(",")[1]},2,1001`];
    await writeFile(path.join(box.root, "u1.base"), [header, ...base].join("\n") + "\n");
    await writeFile(path.join(box.root, "u1.test"), [header, ...test, ...cold].join("\n") + "\n");
    const doc = await runJson(
      ["--ratings-csv", "u1.base", "--test-ratings", "u1.test", "-P", "split=file", ...SMALL.slice(2), "-P", "max_row_limit=-1"],
      box,
    );
    const step = (name: string) => doc.steps.find((s) => s.step === name) as StepDoc;
    expect(step("etl").metrics).toMatchObject({ rows: rows.length + 2, test_file_rows: test.length + 2 });
    expect(step("als").metrics.test_nrows).toBe(test.length + 2);
    expect(step("als").metrics.test_cold_rows).toBeGreaterThanOrEqual(2);
    expect(step("keras").metrics.test_cold_rows).toBeGreaterThanOrEqual(2);
    // Cold rows are scored, not dropped: every test row counts in keras' test error.
    expect(step("keras").metrics.test_nrows).toBe(test.length + 2);
    expect(Number.isFinite(step("keras").metrics.test_rmse)).toBe(true);
  }, 300_000);

  it("with time effects, ms predict --pairs on the test file and the report re-score the keras step's test RMSE", async () => {
    const own = await sandbox("ms-driver-rescore-");
    try {
      const all = path.join(own.root, "all.csv");
      writeSyntheticRatings(all, { seed: 6, rows: 4000 });
      const [header, ...rows] = (await readFile(all, "utf8")).trim().split("\n");
      expect(header).toBe("userId,movieId,rating,timestamp");
      const base = rows.filter((_, i) => i % 10 !== 0);
      const users = new Set(base.map((r) => r.split(",")[0]));
      const movies = new Set(base.map((r) => r.split(",")[1]));
      // Warm test rows only: the report scores the rows the model has factors for.
      const test = rows.filter((r, i) => i % 10 === 0 && users.has(r.split(",")[0]) && movies.has(r.split(",")[1]));
      await writeFile(path.join(own.root, "train.csv"), `${[header, ...base].join("\n")}\n`);
      await writeFile(path.join(own.root, "test.csv"), `${[header, ...test].join("\n")}\n`);
      await writeFile(
        path.join(own.root, "pairs.csv"),
        `${["userId,movieId", ...test.map((r) => r.split(",").slice(0, 2).join(","))].join("\n")}\n`,
      );
      const args = ["--ratings-csv", "train.csv", "--test-ratings", "test.csv", "-P", "split=file", ...SMALL.slice(2)];
      const doc = await runJson([...args, "-P", "max_row_limit=-1", "-P", "fm_time=true"], own);
      const keras = (doc.steps.find((s) => s.step === "keras") as StepDoc).metrics;
      expect(keras.test_nrows).toBe(test.length);
      expect(keras.test_cold_rows).toBe(0);
      const predicted = async (file: string) => {
        const r = await ms(["predict", "--pairs", file, "--format", "csv"], own);
        expect(r.code).toBe(0);
        return r.stdout
          .trim()
          .split("\n")
          .slice(1)
          .map((line) => Number(line.split(",")[2]));
      };
      const atTimes = await predicted("test.csv");
      const truth = test.map((r) => Number(r.split(",")[2]));
      const rmse = Math.sqrt(atTimes.reduce((s, p, i) => s + (p - truth[i]) ** 2, 0) / truth.length);
      // ms predict prints 4 decimals: the RMSE moves by less than 5e-5.
      expect(Math.abs(rmse - keras.test_rmse)).toBeLessThan(1e-4);
      // Without times every pair is scored at the end of the training range: other numbers.
      const atEnd = await predicted("pairs.csv");
      expect(Math.max(...atEnd.map((p, i) => Math.abs(p - atTimes[i])))).toBeGreaterThan(1e-3);
      const meta = path.join(own.cache, "meta");
      const memo = (await readdir(meta)).filter((f) => f.startsWith("report-"));
      expect(memo).toHaveLength(1);
      const report = JSON.parse(await readFile(path.join(meta, memo[0]), "utf8")) as { scores: { model: string; rmse: number }[] };
      expect(report.scores.find((s) => s.model === "keras")?.rmse).toBeCloseTo(keras.test_rmse, 5);
    } finally {
      await own.dispose();
    }
  }, 300_000);

  it("refuses --test-ratings without split=file, and split=file without a test file (exit 2)", async () => {
    const a = await ms(["run", ...SMALL, "--test-ratings", "u1.test"], box);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/test_ratings/);
    const b = await ms(["run", ...SMALL, "-P", "split=file"], box);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/test_ratings/);
  });
});
