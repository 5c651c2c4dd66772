/**
 * The `node` backend: tfjs-node on the libtensorflow of the PyPI tensorflow-cpu wheel, its addon
 * built offline by tools/tfjs-node/build.sh. Where the addon is not built (the script was not run,
 * or cannot run here) the test is skipped, saying why.
 */
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";
import { evaluateModel, keras, loadTf } from "./index.js";
import { resolveKerasParams } from "./params.js";

const reason = await loadTf("node").then(
  () => undefined,
  (error: unknown) => (error instanceof Error ? error.message : String(error)),
);
if (reason)
  process.stderr.write(`node-backend.test: skipped, tfjs-node does not load (build its addon with tools/tfjs-node/build.sh): ${reason}\n`);

describe.skipIf(reason !== undefined)("tfjs-node backend (libtensorflow from the tensorflow-cpu wheel)", () => {
  let root: string;
  let fx: FixtureDirs;

  beforeAll(async () => {
    root = await tempDir("ms-keras-node-");
    fx = await writeFixture(root, { users: 120, movies: 60, seed: 5 });
  });

  afterAll(async () => {
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it("trains through TensorFlow to the fused trainer's test RMSE within 0.005; its model reloads to the same MSE", async () => {
    const params = {
      keras_epochs: 4,
      keras_batch_size: 32,
      keras_learning_rate: 0.01,
      keras_output_bias: "mean",
      keras_features: "factors",
    } as const;
    const inputs = { ratings: fx.ratingsDir, factors: fx.factorsDir };
    const native = await keras(inputs, resolveKerasParams({ ...params, keras_backend: "node" }), path.join(root, "node"));
    const fused = await keras(inputs, resolveKerasParams(params), path.join(root, "fused"));
    expect(native.manifest.details.backend).toBe("tensorflow");
    expect(Math.abs(native.metrics.test_rmse - fused.metrics.test_rmse)).toBeLessThan(0.005);
    expect(existsSync(path.join(root, "node", "model.json"))).toBe(true);
    const rescored = await evaluateModel(path.join(root, "node"), inputs, { backend: "node" });
    expect(rescored.test_mse).toBeCloseTo(native.metrics.test_mse, 6);
  });
});
