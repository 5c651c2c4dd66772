/**
 * The keras step as a declared definition for the driver: its parameter schema (params.ts: the
 * seed's network parameters), the etl step's "ratings", the als step's "factors" and the fm step's
 * out-of-fold "features" as inputs, one "keras-model" output.
 */
import { defineStep, metricsText } from "@ms/contracts";
import { keras } from "./keras.js";
import { completeKerasParams, kerasParams } from "./params.js";
import { KERAS_VERSION } from "./version.js";

/** The seed's `train_keras`. */
export const kerasStep = defineStep({
  name: "keras",
  entryPoint: "train_keras",
  code: { package: "@ms/keras", version: KERAS_VERSION },
  params: kerasParams,
  resolve: completeKerasParams,
  inputs: { ratings: "ratings", factors: "factors", features: "fm" },
  outputs: { model: "keras-model" },
  headline: (metrics) => metricsText(metrics, ["test_rmse", "epochs_run"]),
  async run(ctx, inputs, params, outDir) {
    await keras({ ratings: inputs.ratings.dir, factors: inputs.factors.dir, features: inputs.features.dir }, params, outDir, ctx);
  },
});
