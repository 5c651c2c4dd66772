/**
 * The pipeline on the real ml-latest-small from a local mirror (MS_MOVIELENS_SMALL, default
 * /work/shared/movielens/ml-latest-small, given to `ms run` as `--data-dir <its parent>`): a cold
 * run with every metric, a fully cached second run, max_row_limit above the row count, and
 * `ms recommend` naming movies by the release's titles.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedOf, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

const SMALL_DIR = process.env.MS_MOVIELENS_SMALL ?? path.resolve(__dirname, "../../../../shared/movielens/ml-latest-small");
const present = existsSync(path.join(SMALL_DIR, "ratings.csv"));
const ARGS = ["--dataset", path.basename(SMALL_DIR), "--data-dir", path.dirname(SMALL_DIR), "-P", "keras_epochs=1", "-P", "als_max_iter=5"];

let box: Sandbox;
let cold: RunDoc;
let lines: number;
beforeAll(async () => {
  if (!present) return;
  box = await sandbox("ms-ml-small-");
  lines = readFileSync(path.join(SMALL_DIR, "ratings.csv"), "utf8").trimEnd().split("\n").length - 1;
  cold = await runJson([...ARGS, "-P", "max_row_limit=-1"], box);
});
afterAll(async () => box?.dispose());

describe.skipIf(!present)(`ml-latest-small from ${SMALL_DIR}`, () => {
  it("a cold run reads the mirror in place and reports every metric", () => {
    expect(cachedOf(cold)).toEqual({ download: false, etl: false, als: false, fm: false, keras: false, rank: false, ranking: false });
    const [download, etl, als, fm, keras] = cold.steps;
    expect(download.outputs.ratings.file).toBe(path.join(SMALL_DIR, "ratings.csv"));
    expect(etl.metrics.rows).toBe(lines);
    expect(als.metrics.training_nrows + als.metrics.test_nrows).toBe(lines);
    // ALS on MovieLens reaches a test RMSE well under the 1.0+ of predicting the mean.
    expect(als.metrics.test_rmse).toBeGreaterThan(0.7);
    expect(als.metrics.test_rmse).toBeLessThan(1.0);
    expect(Number.isFinite(keras.metrics.test_rmse)).toBe(true);
    // The fm step's full fit beats the mean's 1.0+ too.
    expect(fm.metrics.test_rmse).toBeLessThan(1.0);
  });

  it("ms recommend names the movies with the titles of the mirror's movies.csv", async () => {
    const r = await ms(["recommend", "--user", "1", "--top", "5", "--model", "als", "--run", cold.runId, "--json"], box);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { recommendations: { movieId: number; title: string | null; score: number }[] };
    const titles = new Map(
      readFileSync(path.join(SMALL_DIR, "movies.csv"), "utf8")
        .split("\n")
        .slice(1)
        .map((l) => [Number(l.split(",")[0]), l] as const),
    );
    expect(doc.recommendations).toHaveLength(5);
    for (const rec of doc.recommendations) {
      expect(rec.title).toBeTypeOf("string");
      expect(titles.get(rec.movieId)).toContain(rec.title!.split(",")[0]);
      expect(Number.isFinite(rec.score)).toBe(true);
    }
  });

  it("an identical second run hits every step", async () => {
    const warm = await runJson([...ARGS, "-P", "max_row_limit=-1"], box);
    expect(cachedOf(warm)).toEqual({ download: true, etl: true, als: true, fm: true, keras: true, rank: true, ranking: true });
  });

  it("a max_row_limit above the row count reruns etl only", async () => {
    const doc = await runJson([...ARGS, "-P", `max_row_limit=${lines + 1000}`], box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: false, als: true, fm: true, keras: true, rank: true, ranking: true });
    expect(doc.steps[1].outputs.ratings.digest).toBe(cold.steps[1].outputs.ratings.digest);
  });

  it("the seed's default max_row_limit (100000) cuts the data and reruns everything after download", async () => {
    const doc = await runJson(ARGS, box);
    expect(cachedOf(doc)).toEqual({ download: true, etl: false, als: false, fm: false, keras: false, rank: false, ranking: false });
    expect(doc.steps[1].metrics.rows).toBe(Math.min(100_000, lines));
  });
});
