/**
 * The identity start (keras_init=identity, the stacked features' default): before any training
 * the network's output is its input 0 to float32 rounding, through tfjs and through the fused
 * kernel, for predictions far below and above the rating scale too; the seeded start is not.
 */
import { describe, expect, it } from "vitest";
import { loadTf } from "./backend.js";
import { buildNetwork, IDENTITY_SHIFT, predictFeatures } from "./network.js";
import { predictFused } from "./fused.js";
import { resolveKerasParams } from "./params.js";

const WIDTH = 6;
const HIDDEN = 20;

function features(rows: number): Float32Array {
  const x = new Float32Array(rows * WIDTH);
  for (let r = 0; r < rows; r++) {
    x[r * WIDTH] = -IDENTITY_SHIFT + 0.25 + ((r * 0.37) % (IDENTITY_SHIFT + 6));
    for (let j = 1; j < WIDTH; j++) x[r * WIDTH + j] = Math.sin(r * 7 + j) * 3;
  }
  return x;
}

describe("keras_init", () => {
  it("identity: the untrained network computes input 0 (tfjs and the fused kernel); glorot does not", async () => {
    const { tf } = await loadTf("wasm");
    const x = features(200);
    const net = buildNetwork(tf, WIDTH, { hiddenUnits: HIDDEN, learningRate: 1e-3, seed: 5, outputBias: 3.5, identity: true });
    const random = buildNetwork(tf, WIDTH, { hiddenUnits: HIDDEN, learningRate: 1e-3, seed: 5, outputBias: 3.5 });
    try {
      const viaTf = await predictFeatures(tf, net, x);
      const weights = net.getWeights().map((w) => w.dataSync() as Float32Array);
      const viaFused = predictFused(weights, WIDTH, HIDDEN, x);
      const seeded = await predictFeatures(tf, random, x);
      let off = 0;
      for (let r = 0; r < 200; r++) {
        expect(Math.abs(viaTf[r] - x[r * WIDTH])).toBeLessThan(1e-5);
        expect(Math.abs(viaFused[r] - x[r * WIDTH])).toBeLessThan(1e-5);
        off = Math.max(off, Math.abs(seeded[r] - x[r * WIDTH]));
      }
      expect(off).toBeGreaterThan(0.1);
    } finally {
      net.dispose();
      random.dispose();
    }
  });

  it("is identity with the stacked features and glorot with the seed's, either overridable", () => {
    expect(resolveKerasParams().keras_init).toBe("identity");
    expect(resolveKerasParams({ keras_features: "seed" }).keras_init).toBe("glorot");
    // Keras' restore_best_weights with the stacked features; the seed keeps Keras' default (the last epoch).
    expect(resolveKerasParams().keras_restore_best).toBe(true);
    expect(resolveKerasParams({ keras_features: "seed" }).keras_restore_best).toBe(false);
    expect(resolveKerasParams({ keras_features: "seed", keras_restore_best: true }).keras_restore_best).toBe(true);
    expect(resolveKerasParams({ keras_init: "glorot" }).keras_init).toBe("glorot");
    expect(() => resolveKerasParams({ keras_init: "zeros" as never })).toThrow(/keras_init/);
  });
});
