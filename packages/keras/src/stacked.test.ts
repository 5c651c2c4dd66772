/**
 * The default (stacked) feature set end to end on small generated data: out-of-fold features
 * from real Gibbs fits, a network trained on them, the manifest, determinism, and a reloaded
 * model that re-scores to the published metrics.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";
import { readFactors, readRatingsColumns } from "./adapter.js";
import { evaluateModel, joinRatings, keras, loadModel, predictStackedPairs } from "./index.js";
import { resolveKerasParams } from "./params.js";

let root: string;
let fx: FixtureDirs;

beforeAll(async () => {
  root = await tempDir();
  fx = await writeFixture(root, { users: 90, movies: 50, usersWithoutFactors: 5, seed: 3 });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const SMALL = { keras_backend: "wasm", keras_bayes_samples: 12, keras_bayes_burn_in: 3, keras_bayes_rank: 3, keras_epochs: 3 } as const;

describe("stacked features (the default)", () => {
  it("trains on out-of-fold features, records them, re-scores the same after reload, and repeats for a seed", async () => {
    const a = await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveKerasParams(SMALL), path.join(root, "stacked-a"));
    const manifest = a.manifest;
    expect(manifest.details).toMatchObject({
      features: "stacked",
      inputWidth: 6,
      columns: ["bayes_prediction", "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"],
    });
    expect(manifest.params).toMatchObject({
      keras_learning_rate: 1e-3,
      keras_output_bias: "mean",
      keras_oof_folds: 3,
      keras_bayes_samples: 12,
    });
    expect(a.metrics.oof_seconds).toBeGreaterThan(0);
    expect(Number.isFinite(a.metrics.test_rmse)).toBe(true);

    const again = await evaluateModel(
      path.join(root, "stacked-a"),
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      { backend: "wasm" },
    );
    expect(again.test_mse).toBeCloseTo(a.metrics.test_mse, 6);
    expect(again.train_mse).toBeCloseTo(a.metrics.train_mse, 6);

    // New pairs are scored from the saved full-fit tables: the test rows, scored that way, give the published test MSE.
    expect(manifest.details).toMatchObject({ stacked: { model: "bayes", file: "stacked_tables.bin" } });
    expect(manifest.files.map((f) => f.path)).toContain("stacked_tables.bin");
    const ratings = await readRatingsColumns(fx.ratingsDir);
    const factors = await readFactors(fx.factorsDir);
    const joined = joinRatings(ratings, factors, manifest.details.split);
    const users = Int32Array.from(joined.testRows, (r) => ratings.userIds[joined.source[r]]);
    const movies = Int32Array.from(joined.testRows, (r) => ratings.movieIds[joined.source[r]]);
    const loaded = await loadModel(path.join(root, "stacked-a"), { backend: "wasm" });
    try {
      const served = await predictStackedPairs(loaded, users, movies);
      let sse = 0;
      for (let i = 0; i < served.length; i++) sse += (served[i] - joined.ratings[joined.testRows[i]]) ** 2;
      expect(sse / served.length).toBeCloseTo(a.metrics.test_mse, 5);
      await expect(predictStackedPairs(loaded, [987654], [movies[0]])).rejects.toThrow(/userId 987654 has no training ratings/);
    } finally {
      loaded.model.dispose();
    }

    const b = await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveKerasParams(SMALL), path.join(root, "stacked-b"));
    expect(b.metrics.test_mse).toBe(a.metrics.test_mse);
    expect(b.manifest.digest).toBe(a.manifest.digest);
  });
});

describe("stacked features with the als out-of-fold model (what auto takes above 2M training ratings)", () => {
  it("fits ALS per fold, takes the als step's factors as the full fit, and serves its test rows the same", async () => {
    const a = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...SMALL, keras_oof_model: "als" }),
      path.join(root, "stacked-als"),
    );
    expect(a.manifest.details).toMatchObject({
      columns: ["als_prediction", "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"],
      stacked: { model: "als" },
    });
    expect(Number.isFinite(a.metrics.test_rmse)).toBe(true);
    const again = await evaluateModel(
      path.join(root, "stacked-als"),
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      { backend: "wasm" },
    );
    expect(again.test_mse).toBeCloseTo(a.metrics.test_mse, 6);
    const b = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...SMALL, keras_oof_model: "als" }),
      path.join(root, "stacked-als-b"),
    );
    expect(b.manifest.digest).toBe(a.manifest.digest);
  });
});
