/**
 * The fused WebAssembly trainer against the tfjs reference path: the same network, initial
 * weights, shuffles and Adam give the same losses and test RMSE; its models are plain tfjs layers
 * models (loaded by `tf.loadLayersModel`, re-scored to the same metrics); results repeat exactly
 * for a seed and do not depend on the thread count; stops and divergence behave as tfjs' do; with
 * `restoreBest` both end with the weights of the epoch of best val_loss.
 */
import { BadParameterError, InterruptedError, readManifest } from "@ms/contracts";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";
import {
  buildNetwork,
  evaluateModel,
  FeatureAssembler,
  fitFused,
  fitNetwork,
  joinRatings,
  keras,
  loadTf,
  MODEL_FILE,
  predictFused,
  resolveKerasParams,
  trainNetwork,
  validationTail,
  WEIGHTS_FILE,
} from "./index.js";

let root: string;
let fx: FixtureDirs;

beforeAll(async () => {
  root = await tempDir("ms-keras-fused-");
  fx = await writeFixture(root, { users: 120, movies: 60, seed: 5 });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const QUICK = {
  keras_epochs: 4,
  keras_batch_size: 32,
  keras_learning_rate: 0.01,
  keras_output_bias: "mean",
  keras_features: "factors",
} as const;
const inputs = () => ({ ratings: fx.ratingsDir, factors: fx.factorsDir });

/** Runs `fn` with MS_KERAS_THREADS set (the fused trainer's thread count), then restores it. */
async function withThreads<T>(threads: number, fn: () => Promise<T>): Promise<T> {
  const before = process.env.MS_KERAS_THREADS;
  process.env.MS_KERAS_THREADS = String(threads);
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.MS_KERAS_THREADS;
    else process.env.MS_KERAS_THREADS = before;
  }
}

/** The cpu backend, and the fixture's fit and validation rows with their factors features. */
async function fixtureRows() {
  const { tf } = await loadTf("cpu");
  const joined = joinRatings(fx.data.ratings, fx.data.factors, { seed: 7, splitProp: 0.8 });
  const { fitRows, valRows } = validationTail(joined.trainRows, 0.2);
  return { tf, fitRows, valRows, assembler: new FeatureAssembler("factors", fx.data.factors, joined) };
}

describe("fused trainer", () => {
  it("is what backend auto trains with, and gives the tfjs wasm path's test RMSE within 0.005", async () => {
    const fused = await keras(inputs(), resolveKerasParams(QUICK), path.join(root, "fused"));
    const reference = await keras(inputs(), resolveKerasParams({ ...QUICK, keras_backend: "wasm" }), path.join(root, "wasm"));
    expect(fused.manifest.params.keras_backend).toBe("auto");
    expect(fused.manifest.details.backend).toBe("fused");
    expect(reference.manifest.details.backend).toBe("wasm");
    expect(fused.metrics.epochs_run).toBe(reference.metrics.epochs_run);
    expect(Math.abs(fused.metrics.test_rmse - reference.metrics.test_rmse)).toBeLessThan(0.005);
    expect(Math.abs(fused.metrics.train_mse - reference.metrics.train_mse)).toBeLessThan(0.01);
    // Per-epoch losses follow the reference closely (float32 sums in another order only).
    const a = fused.manifest.details.history;
    const b = reference.manifest.details.history;
    for (let i = 0; i < a.length; i++) {
      expect(a[i].loss).toBeCloseTo(b[i].loss, 2);
      expect(a[i].val_loss).toBeCloseTo(b[i].val_loss as number, 2);
    }
  });

  it("takes the same steps as tfjs from the same weights: losses agree to 1e-4 relative over 3 epochs", async () => {
    const { tf, fitRows, valRows, assembler } = await fixtureRows();
    const net = { hiddenUnits: 7, learningRate: 3e-3, seed: 9, outputBias: 3 };
    const options = { epochs: 3, batchSize: 50, patience: 5, minDelta: 0, seed: 4, shuffle: true };
    const model = buildNetwork(tf, assembler.width, net);
    const initial = model.getWeights().map((w) => w.dataSync() as Float32Array);
    const fused = await fitFused(assembler, fitRows, valRows, initial, {
      ...options,
      hiddenUnits: net.hiddenUnits,
      learningRate: net.learningRate,
      threads: 1,
    });
    const reference = await fitNetwork(tf, model, assembler, fitRows, valRows, options);
    expect(fused.history).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(fused.history[i].loss / reference.history[i].loss - 1)).toBeLessThan(1e-4);
      expect(Math.abs((fused.history[i].val_loss as number) / (reference.history[i].val_loss as number) - 1)).toBeLessThan(1e-4);
    }
    const after = model.getWeights().map((w) => w.dataSync() as Float32Array);
    for (let i = 0; i < after.length; i++)
      for (let j = 0; j < after[i].length; j++) expect(fused.weights[i][j]).toBeCloseTo(after[i][j], 3);
    // The kernel's forward pass is the model's.
    const x = new Float32Array(fitRows.length * assembler.width);
    assembler.fill(fitRows, 0, fitRows.length, x, undefined);
    const ours = predictFused(after, assembler.width, net.hiddenUnits, x);
    const theirs = (model.predict(tf.tensor2d(x, [fitRows.length, assembler.width])) as import("@tensorflow/tfjs").Tensor).dataSync();
    for (let i = 0; i < ours.length; i++) expect(ours[i]).toBeCloseTo(theirs[i], 4);
    model.dispose();
  });

  it("with restoreBest, both trainers end with the best val_loss epoch's weights: those of a run stopped there", async () => {
    const { tf, fitRows, valRows, assembler } = await fixtureRows();
    // A large step on little data: val_loss turns up before the last epoch.
    const net = { hiddenUnits: 64, learningRate: 0.1, seed: 3, outputBias: 3 };
    const options = { epochs: 8, batchSize: 16, patience: 8, minDelta: 0, seed: 4, shuffle: true };
    const fresh = () => buildNetwork(tf, assembler.width, net);
    const start = fresh();
    const initial = start.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
    start.dispose();
    const fuse = (epochs: number, restoreBest: boolean) =>
      fitFused(assembler, fitRows, valRows, initial, {
        ...options,
        epochs,
        restoreBest,
        hiddenUnits: net.hiddenUnits,
        learningRate: net.learningRate,
        threads: 1,
      });
    const restored = await fuse(8, true);
    const vals = restored.history.map((h) => h.val_loss as number);
    const best = vals.indexOf(Math.min(...vals));
    expect(restored.bestEpoch).toBe(best);
    expect(best).toBeLessThan(restored.history.length - 1);
    const stopped = await fuse(best + 1, false);
    expect(stopped.bestEpoch).toBeUndefined();
    expect(restored.weights).toEqual(stopped.weights);
    expect(await restored.mse(valRows)).toBeCloseTo(vals[best], 5);

    const tfjs = async (epochs: number, restoreBest: boolean) => {
      const model = fresh();
      const fit = await fitNetwork(tf, model, assembler, fitRows, valRows, { ...options, epochs, restoreBest });
      const weights = model.getWeights().map((w) => Array.from(w.dataSync() as Float32Array));
      model.dispose();
      return { fit, weights };
    };
    const a = await tfjs(8, true);
    const tfVals = a.fit.history.map((h) => h.val_loss as number);
    const tfBest = tfVals.indexOf(Math.min(...tfVals));
    expect(a.fit.bestEpoch).toBe(tfBest);
    expect(tfBest).toBeLessThan(a.fit.history.length - 1);
    const b = await tfjs(tfBest + 1, false);
    for (let i = 0; i < a.weights.length; i++)
      for (let j = 0; j < a.weights[i].length; j++) expect(a.weights[i][j]).toBeCloseTo(b.weights[i][j], 6);
  });

  it("saves a tfjs layers model that tf.loadLayersModel reads and that re-scores to the same metrics", async () => {
    const out = path.join(root, "fused");
    const manifest = await readManifest(out, "keras-model");
    const { tf } = await loadTf("wasm");
    const json = JSON.parse(await fs.readFile(path.join(out, MODEL_FILE), "utf8"));
    const weights = await fs.readFile(path.join(out, WEIGHTS_FILE));
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      }),
    );
    expect(model.layers.map((l) => l.name)).toEqual(["dense_1", "dense_2", "dense_3"]);
    expect(model.outputs[0].shape).toEqual([null, 1]);
    model.dispose();
    const rescored = await evaluateModel(out, inputs(), { backend: "wasm" });
    expect(rescored.test_mse).toBeCloseTo(manifest.metrics.test_mse as number, 6);
    expect(rescored.train_mse).toBeCloseTo(manifest.metrics.train_mse as number, 6);
  });

  it("is deterministic for a seed, and two threads give the very same bits as one", async () => {
    const params = resolveKerasParams({ ...QUICK, keras_batch_size: 33 });
    const split = { seed: 7, splitProp: 0.8 };
    const one = await withThreads(1, () => trainNetwork(fx.data.ratings, fx.data.factors, split, params));
    const again = await withThreads(1, () => trainNetwork(fx.data.ratings, fx.data.factors, split, params));
    const two = await withThreads(2, () => trainNetwork(fx.data.ratings, fx.data.factors, split, params));
    const bits = (t: typeof one) => t.model.getWeights().map((w) => Array.from(w.dataSync()));
    expect(again.metrics.test_mse).toBe(one.metrics.test_mse);
    expect(two.metrics.test_mse).toBe(one.metrics.test_mse);
    expect(two.history).toEqual(one.history);
    expect(bits(two)).toEqual(bits(one));
    expect(bits(again)).toEqual(bits(one));
    for (const t of [one, again, two]) t.model.dispose();
  });

  it("stops at the end of the batch in which a stop is asked for, with one thread or two", async () => {
    const joined = joinRatings(fx.data.ratings, fx.data.factors, { seed: 7, splitProp: 0.8 });
    const assembler = new FeatureAssembler("factors", fx.data.factors, joined);
    const { tf } = await loadTf("cpu");
    const model = buildNetwork(tf, assembler.width, { hiddenUnits: 5, learningRate: 1e-3, seed: 1, outputBias: 0 });
    const initial = model.getWeights().map((w) => w.dataSync() as Float32Array);
    model.dispose();
    for (const threads of [1, 2]) {
      let batches = 0;
      const r = await fitFused(assembler, joined.trainRows, new Int32Array(0), initial, {
        epochs: 100,
        batchSize: 8,
        patience: 100,
        minDelta: 0,
        seed: 1,
        shuffle: true,
        hiddenUnits: 5,
        learningRate: 1e-3,
        threads,
        onBatch: () => batches++,
        shouldStop: () => batches >= 3,
      });
      expect(batches).toBe(3);
      expect(r.epochsRun).toBe(0);
      expect(r.stoppedEarly).toBe(false);
    }
  });

  it("an abort ends the step with InterruptedError and publishes nothing", async () => {
    const controller = new AbortController();
    const out = path.join(root, "aborted");
    const metrics = { metric: (key: string) => key === "loss" && controller.abort() };
    const error = await keras(inputs(), resolveKerasParams({ ...QUICK, keras_epochs: 50, keras_patience: 50 }), out, {
      metrics,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(existsSync(out)).toBe(false);
  });

  it("a learning rate that blows the training up is refused naming keras_learning_rate; nothing is published", async () => {
    const out = path.join(root, "lr-blowup");
    const error = await keras(inputs(), resolveKerasParams({ ...QUICK, keras_learning_rate: 1e300 }), out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadParameterError);
    expect((error as BadParameterError).parameter).toBe("keras_learning_rate");
    expect((error as Error).message).toMatch(/training diverged/);
    expect(existsSync(out)).toBe(false);
  });

  it("early-stops on val_loss as tfjs' EarlyStopping does", async () => {
    // A huge min_delta: no epoch counts as an improvement after the first, so patience 1 stops after epoch 2.
    const r = await keras(
      inputs(),
      resolveKerasParams({ ...QUICK, keras_epochs: 10, keras_patience: 1, keras_min_delta: 100 }),
      path.join(root, "early"),
    );
    const reference = await keras(
      inputs(),
      resolveKerasParams({ ...QUICK, keras_epochs: 10, keras_patience: 1, keras_min_delta: 100, keras_backend: "wasm" }),
      path.join(root, "early-wasm"),
    );
    expect(r.metrics.epochs_run).toBe(2);
    expect(reference.metrics.epochs_run).toBe(2);
  });
});
