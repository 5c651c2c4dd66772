/**
 * The default (stacked) feature set end to end on small generated data: out-of-fold features
 * from the real fm step (real Gibbs fits), a network trained on them, the manifest, determinism,
 * a reloaded model that re-scores to the published metrics, and features that do not belong to
 * the ratings and factors given refused.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFeatures, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";
import { readFactors, readRatingsColumns } from "./adapter.js";
import { evaluateModel, joinRatings, keras, loadModel, pairScorer, predictStackedPairs } from "./index.js";
import { resolveKerasParams } from "./params.js";
import { CorruptArtifactError, MissingArtifactError, BadParameterError } from "@ms/contracts";
import type { FmParams } from "@ms/fm";

let root: string;
let fx: FixtureDirs;
let bayes: string;
let als: string;

const features = (name: string, params: Partial<FmParams> = {}) => writeFeatures(fx, path.join(root, name), params);

beforeAll(async () => {
  root = await tempDir();
  fx = await writeFixture(root, { users: 90, movies: 50, usersWithoutFactors: 5, seed: 3 });
  bayes = await features("fm-bayes", { fm_model: "bayes" });
  als = await features("fm-als", { fm_model: "als" });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const SMALL = { keras_backend: "wasm", keras_epochs: 3 } as const;

describe("stacked features (the default)", () => {
  it("trains on out-of-fold features, records them, re-scores the same after reload, and repeats for a seed", async () => {
    const inputs = { ratings: fx.ratingsDir, factors: fx.factorsDir, features: bayes };
    const a = await keras(inputs, resolveKerasParams(SMALL), path.join(root, "stacked-a"));
    const manifest = a.manifest;
    expect(manifest.details).toMatchObject({
      features: "stacked",
      inputWidth: 6,
      columns: ["bayes_prediction", "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"],
    });
    expect(manifest.params).toMatchObject({
      keras_learning_rate: 1e-3,
      keras_output_bias: "mean",
      keras_init: "identity",
      keras_restore_best: true,
    });
    expect(Number.isFinite(a.metrics.test_rmse)).toBe(true);
    // The kept epoch is one that ran (the metric exists only when the best weights are restored).
    expect(a.metrics.best_epoch).toBeGreaterThanOrEqual(1);
    expect(a.metrics.best_epoch).toBeLessThanOrEqual(a.metrics.epochs_run);

    const again = await evaluateModel(path.join(root, "stacked-a"), inputs, { backend: "wasm" });
    expect(again.test_mse).toBeCloseTo(a.metrics.test_mse, 6);
    expect(again.train_mse).toBeCloseTo(a.metrics.train_mse, 6);

    // New pairs are scored from the saved full-fit tables: the test rows, scored that way, give the published test MSE.
    expect(manifest.details).toMatchObject({ stacked: { model: "bayes" } });
    expect(manifest.files.map((f) => f.path)).toContain("tables/userFactors.bin");
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
      // The serving scorer (the fused kernel's forward pass) gives tfjs' predictions to float32 rounding, pair by pair or all at once.
      const scorer = pairScorer(loaded);
      const all = new Float64Array(users.length);
      scorer.score(users, movies, all);
      const one = new Float64Array(1);
      for (let i = 0; i < served.length; i++) {
        expect(Math.abs(all[i] - served[i])).toBeLessThan(1e-5);
        scorer.score(users.subarray(i, i + 1), movies.subarray(i, i + 1), one);
        expect(one[0]).toBe(all[i]);
      }
      expect(scorer.hasUser(987654)).toBe(false);
      expect(scorer.hasUser(users[0]) && scorer.hasMovie(movies[0])).toBe(true);
    } finally {
      loaded.model.dispose();
    }

    const b = await keras(inputs, resolveKerasParams(SMALL), path.join(root, "stacked-b"));
    expect(b.metrics.test_mse).toBe(a.metrics.test_mse);
    expect(b.manifest.digest).toBe(a.manifest.digest);
  });

  it("refuses stacked training without features, with features of fm_model=none, and with features of other factors", async () => {
    const base = { ratings: fx.ratingsDir, factors: fx.factorsDir };
    await expect(keras(base, resolveKerasParams(SMALL), path.join(root, "no-features"))).rejects.toThrow(MissingArtifactError);
    const none = await features("fm-none", { fm_model: "none" });
    const refused = await keras({ ...base, features: none }, resolveKerasParams(SMALL), path.join(root, "none")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BadParameterError);
    expect(String(refused)).toMatch(/fm_model/);
    // The seed's features need none: fm_model=none is what their users set.
    const seed = await keras(
      { ...base, features: none },
      resolveKerasParams({ ...SMALL, keras_features: "seed" }),
      path.join(root, "seed"),
    );
    expect(seed.manifest.details.features).toBe("seed");
    await fs.mkdir(path.join(root, "other"));
    const other = await writeFixture(path.join(root, "other"), { users: 90, movies: 50, seed: 4 });
    const foreign = keras(
      { ratings: fx.ratingsDir, factors: other.factorsDir, features: bayes },
      resolveKerasParams({ ...SMALL, keras_allow_foreign_factors: true }),
      path.join(root, "foreign"),
    );
    await expect(foreign).rejects.toThrow(CorruptArtifactError);
    await expect(foreign).rejects.toThrow(/made from factors/);
  });
});

describe("stacked features of the als out-of-fold model (what auto takes above 2M training ratings)", () => {
  it("trains on them, and re-scores the same after reload", async () => {
    const inputs = { ratings: fx.ratingsDir, factors: fx.factorsDir, features: als };
    const a = await keras(inputs, resolveKerasParams(SMALL), path.join(root, "stacked-als"));
    expect(a.manifest.details).toMatchObject({
      columns: ["als_prediction", "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"],
      stacked: { model: "als" },
    });
    expect(Number.isFinite(a.metrics.test_rmse)).toBe(true);
    const again = await evaluateModel(path.join(root, "stacked-als"), inputs, { backend: "wasm" });
    expect(again.test_mse).toBeCloseTo(a.metrics.test_mse, 6);
    const b = await keras(inputs, resolveKerasParams(SMALL), path.join(root, "stacked-als-b"));
    expect(b.manifest.digest).toBe(a.manifest.digest);
  });
});
