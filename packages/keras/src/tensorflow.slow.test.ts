/**
 * The fused trainer against TensorFlow's own Keras (tensorflow-cpu from PyPI, in the pinned venv
 * of tools/python/ensure-venv.sh keras): from the same initial weights, on the same rows in the
 * same order, `model.fit(shuffle=False, validation_split=0.2)` and ms-keras must take the same
 * steps. Shuffles are taken out because one run's test RMSE moves by 0.005-0.01 with its shuffle
 * alone (tools/bench/keras/parity.mjs sizes that); with them out, a difference in the loss, the
 * gradients, Adam or the validation tail shows in the very first epoch.
 */
import { ensurePythonVenv, REPO_ROOT, writeNpy } from "@ms/tracking/testing";
import { spawnSync } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticData, tempDir } from "./__tests__/fixtures.js";
import { buildNetwork, FeatureAssembler, fitFused, joinRatings, loadTf, validationTail } from "./index.js";

const KERAS_TF = path.join(REPO_ROOT, "packages/keras/reference/keras_tf.py");
let root: string;
let python: string;

beforeAll(async () => {
  root = await tempDir("ms-keras-tf-");
  python = path.join(await ensurePythonVenv("keras"), "bin/python");
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

interface KerasRun {
  loss: number[];
  val_loss: number[];
  test_rmse: number;
  tensorflow: string;
}

describe("fused trainer against TensorFlow Keras", () => {
  it("takes the same steps as model.fit from the same weights: losses within 0.2%, test RMSE within 0.002", async () => {
    const data = syntheticData({ users: 300, movies: 100, density: 0.3, seed: 11 });
    const joined = joinRatings(data.ratings, data.factors, { seed: 3, splitProp: 0.8 });
    const assembler = new FeatureAssembler("factors", data.factors, joined);
    const { fitRows, valRows } = validationTail(joined.trainRows, 0.2);
    expect(fitRows.length).toBeGreaterThan(5000);
    // Keras takes validation_split's tail of x_train itself, so it gets every training row in order.
    for (const [name, rows] of [
      ["train", joined.trainRows],
      ["test", joined.testRows],
    ] as const) {
      const x = new Float32Array(rows.length * assembler.width);
      const y = new Float32Array(rows.length);
      assembler.fill(rows, 0, rows.length, x, y);
      writeNpy(path.join(root, `x_${name}.npy`), x, [rows.length, assembler.width]);
      writeNpy(path.join(root, `y_${name}.npy`), y, [rows.length]);
    }
    const net = { hiddenUnits: 20, learningRate: 3e-3, seed: 5, outputBias: 0 };
    const { tf } = await loadTf("wasm");
    const model = buildNetwork(tf, assembler.width, net);
    const initial = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
    const initDir = path.join(root, "init");
    await fs.mkdir(initDir);
    model.getWeights().forEach((w, i) => writeNpy(path.join(initDir, `w${i}.npy`), initial[i], w.shape));
    model.dispose();

    const epochs = 5;
    const batch = 64;
    const ours = await fitFused(assembler, fitRows, valRows, initial, {
      epochs,
      batchSize: batch,
      patience: epochs,
      minDelta: 1e-4,
      seed: 1,
      shuffle: false,
      hiddenUnits: net.hiddenUnits,
      learningRate: net.learningRate,
      threads: 1,
    });
    const oursTest = Math.sqrt(await ours.mse(joined.testRows));

    // keras_tf.py FEATURES EPOCHS BATCH LR PATIENCE MIN_DELTA VALIDATION_SPLIT HIDDEN SEED INIT
    const args = [
      KERAS_TF,
      root,
      String(epochs),
      String(batch),
      String(net.learningRate),
      String(epochs),
      "0.0001",
      "0.2",
      String(net.hiddenUnits),
      "1",
      initDir,
    ];
    const r = spawnSync(python, args, { encoding: "utf8", env: { ...process.env, MS_TF_SHUFFLE: "0" }, timeout: 170_000 });
    expect(r.status, `keras_tf.py: ${r.stderr?.slice(-2000)}`).toBe(0);
    const theirs = JSON.parse(r.stdout.trim().split("\n").pop() as string) as KerasRun;
    expect(theirs.tensorflow).toBe("2.20.0");

    expect(ours.history).toHaveLength(epochs);
    expect(theirs.loss).toHaveLength(epochs);
    for (let e = 0; e < epochs; e++) {
      expect(
        Math.abs(ours.history[e].loss / theirs.loss[e] - 1),
        `loss, epoch ${e + 1}: ours ${ours.history[e].loss}, Keras ${theirs.loss[e]}`,
      ).toBeLessThan(2e-3);
      expect(Math.abs((ours.history[e].val_loss as number) / theirs.val_loss[e] - 1), `val_loss, epoch ${e + 1}`).toBeLessThan(2e-3);
    }
    // Training did something (the loss fell), so agreeing is not agreeing on a no-op.
    expect(theirs.loss[epochs - 1]).toBeLessThan(theirs.loss[0] * 0.9);
    expect(Math.abs(oursTest - theirs.test_rmse)).toBeLessThan(0.002);
  });
});
