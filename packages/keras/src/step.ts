/**
 * The keras step as a declared definition for the driver: the seed's network parameters plus the
 * stacked features' (out-of-fold fits, computed inside the step and cached with its output), the
 * etl step's "ratings" and the als step's "factors" as inputs, one "keras-model" output.
 */
import { defineStep, param, type ParamDefs } from "@ms/contracts";
import { BACKEND_CHOICES } from "./backend.js";
import { FEATURE_SETS } from "./features.js";
import { keras, KERAS_DEFAULTS, resolveKerasParams, SEED_TRAINING as T, STACKED_TRAINING as S, type KerasParams } from "./keras.js";
import { KERAS_VERSION } from "./version.js";

const d = KERAS_DEFAULTS;
const kerasParams: ParamDefs<KerasParams> = {
  hiddenUnits: param.integer({ default: d.hiddenUnits, doc: "units of the hidden layer" }),
  epochs: param.integer({ doc: `training epochs (early stopping may end sooner); default ${S.epochs} stacked, ${T.epochs} the seed's features` }),
  batchSize: param.integer({ doc: `ratings per gradient step; default ${S.batchSize}` }),
  learningRate: param.number({ doc: `Adam learning rate; default ${S.learningRate} stacked, ${T.learningRate} the seed's features` }),
  patience: param.integer({ default: d.patience, doc: "early stopping: epochs without a min_delta improvement of val_loss" }),
  minDelta: param.number({ default: d.minDelta, doc: "early stopping: the smallest val_loss improvement that counts" }),
  validationSplit: param.number({ default: d.validationSplit, doc: "share of the training part held out for val_loss (its last rows, as Keras does)" }),
  features: param.choice(FEATURE_SETS, { default: d.features, doc: "network input: stacked (out-of-fold Bayesian prediction, biases, counts, implicit feedback), seed/factors (the seed's) or factors+dot" }),
  oofModel: param.choice(["auto", "bayes", "als"] as const, {
    default: d.oofModel,
    doc: "stacked: the out-of-fold model: bayes (Gibbs-sampled factor model), als (ALS-WR on the worker threads), or auto (bayes up to 2M training ratings, als above)",
  }),
  oofFolds: param.integer({ default: d.oofFolds, doc: "stacked: folds of the training part for the out-of-fold fits" }),
  bayesRank: param.integer({ default: d.bayesRank, doc: "stacked: rank of the Bayesian factor model (Gibbs sampling)" }),
  bayesSamples: param.integer({ default: d.bayesSamples, doc: "stacked: Gibbs sweeps per fit" }),
  bayesBurnIn: param.integer({ default: d.bayesBurnIn, doc: "stacked: sweeps discarded before predictions are averaged" }),
  outputBias: param.choice(["zero", "mean"] as const, { doc: `initial output bias: zero or the mean training rating; default ${S.outputBias} stacked, ${T.outputBias} the seed's features` }),
  seed: param.integer({ default: d.seed, defaultFrom: "seed", doc: "weight initialisation and shuffles; defaults to the value of seed" }),
  allowForeignFactors: param.boolean({ default: d.allowForeignFactors, doc: "train on factors fitted to other ratings than these (refused by default)" }),
  backend: param.choice(BACKEND_CHOICES, { default: d.backend, doc: "trainer: auto and fused train with the fused WebAssembly SIMD kernel (model kept in TensorFlow.js); node, wasm and cpu train with that TensorFlow.js backend (the reference path)" }),
};

/** The seed's `train_keras`. */
export const kerasStep = defineStep({
  name: "keras",
  code: { package: "@ms/keras", version: KERAS_VERSION },
  params: kerasParams,
  resolve: resolveKerasParams,
  inputs: { ratings: "ratings", factors: "factors" },
  outputs: { model: "keras-model" },
  async run(ctx, inputs, params, outDir) {
    await keras({ ratings: inputs.ratings.dir, factors: inputs.factors.dir }, params, outDir, ctx);
  },
});
