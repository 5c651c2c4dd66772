/**
 * The default (stacked) feature set end to end on small generated data: out-of-fold features
 * from real Gibbs fits, a network trained on them, the manifest, determinism, and a reloaded
 * model that re-scores to the published metrics.
 */
import { readManifest } from "@ms/contracts";
import { promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";
import { evaluateModel, keras } from "./index.js";

let root: string;
let fx: FixtureDirs;

beforeAll(async () => {
  root = await tempDir();
  fx = await writeFixture(root, { users: 90, movies: 50, usersWithoutFactors: 5, seed: 3 });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const SMALL = { backend: "wasm", bayesSamples: 12, bayesBurnIn: 3, bayesRank: 3, epochs: 3 } as const;

describe("stacked features (the default)", () => {
  it("trains on out-of-fold features, records them, re-scores the same after reload, and repeats for a seed", async () => {
    const a = await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, SMALL, path.join(root, "stacked-a"));
    const manifest = await readManifest(path.join(root, "stacked-a"), "keras-model");
    expect(manifest.details).toMatchObject({ features: "stacked", inputWidth: 6, columns: ["bayes_prediction", "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"] });
    expect(manifest.params).toMatchObject({ learningRate: 1e-3, outputBias: "mean", oofFolds: 3, bayesSamples: 12 });
    expect(a.metrics.oof_seconds).toBeGreaterThan(0);
    expect(Number.isFinite(a.metrics.test_rmse)).toBe(true);

    const again = await evaluateModel(path.join(root, "stacked-a"), { ratings: fx.ratingsDir, factors: fx.factorsDir }, { backend: "wasm" });
    expect(again.test_mse).toBeCloseTo(a.metrics.test_mse, 6);
    expect(again.train_mse).toBeCloseTo(a.metrics.train_mse, 6);

    const b = await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, SMALL, path.join(root, "stacked-b"));
    expect(b.metrics.test_mse).toBe(a.metrics.test_mse);
    expect(b.manifest.digest).toBe(a.manifest.digest);
  });
});
