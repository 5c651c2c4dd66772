/**
 * The keras step's parameter schema: the one place each parameter is declared, under its one
 * name (`keras_hidden_units`, the seed MLproject's `-P` name), with its default, range and doc.
 * The training defaults that depend on the feature set live in `completeKerasParams`;
 * `resolveKerasParams` is the one resolver. The stacked features' own parameters (fm_*) are
 * the fm step's.
 */
import { param, paramResolver, type ParamDefs } from "@ms/contracts";
import { BACKEND_CHOICES, type BackendChoice } from "./backend.js";
import { FEATURE_SETS, type FeatureSet } from "./features.js";

export interface KerasParams {
  keras_hidden_units: number;
  keras_epochs: number;
  keras_batch_size: number;
  keras_learning_rate: number;
  /** Early stopping: epochs without a `keras_min_delta` improvement of val_loss before stopping. */
  keras_patience: number;
  keras_min_delta: number;
  /** Fraction of the training part held out for val_loss: its last rows in file order, as Keras does. */
  keras_validation_split: number;
  /** `stacked` (out-of-fold features) by default; `seed`/`factors` is the seed's input; see FEATURE_SETS. */
  keras_features: FeatureSet;
  /** Initial output bias: `zero` (the seed's, Keras' default) or the mean training rating. */
  keras_output_bias: "zero" | "mean";
  /** How the network starts: the seeded kernels, or the identity on its first input (the stacked features' prediction). */
  keras_init: "glorot" | "identity";
  /** Keep the weights of the epoch with the best val_loss (Keras' `restore_best_weights`), not the last epoch's. */
  keras_restore_best: boolean;
  /** Seeds weight initialisation and the per-epoch shuffles. */
  keras_seed: number;
  /**
   * Train on factors whose manifest records other ratings than the ones given (normally refused
   * as a corrupt pairing: the split and the features would not describe these ratings).
   */
  keras_allow_foreign_factors: boolean;
  keras_backend: BackendChoice;
}

/** The seed's training defaults (`keras_features` `seed`/`factors`/`factors+dot`). */
export const SEED_TRAINING = {
  keras_epochs: 3,
  keras_batch_size: 128,
  keras_learning_rate: 1e-4,
  keras_output_bias: "zero",
  keras_init: "glorot",
  keras_restore_best: false,
} as const;
/**
 * Training defaults of the stacked features: a handful of well-scaled inputs close to the answer
 * (the Bayesian prediction), so a larger step and the mean rating as starting output pay off.
 * (3e-4 scored 0.0004-0.0015 RMSE better on the quality benchmark but ran every epoch on 20M
 * ratings, 30 s more than 1e-3's early stop: packages/keras/README.md.)
 */
export const STACKED_TRAINING = {
  keras_epochs: 6,
  keras_batch_size: 128,
  keras_learning_rate: 1e-3,
  keras_output_bias: "mean",
  keras_init: "identity",
  keras_restore_best: true,
} as const;

export const KERAS_DEFAULTS: Readonly<KerasParams> = {
  keras_hidden_units: 20,
  ...STACKED_TRAINING,
  keras_patience: 2,
  keras_min_delta: 1e-4,
  keras_validation_split: 0.2,
  keras_features: "stacked",
  keras_seed: 42,
  keras_allow_foreign_factors: false,
  keras_backend: "auto",
};

/** Upper bounds of the size parameters: far above any sensible value, low enough to fail fast instead of exhausting memory. */
export const KERAS_LIMITS = { keras_hidden_units: 4096, keras_batch_size: 65_536, keras_epochs: 10_000 } as const;

const d = KERAS_DEFAULTS;
const S = STACKED_TRAINING;
const T = SEED_TRAINING;
const bySet = (s: string | number, t: string | number) => `${s} stacked, ${t} the seed's features`;

export const kerasParams: ParamDefs<KerasParams> = {
  keras_hidden_units: param.integer({
    default: d.keras_hidden_units,
    min: 1,
    max: KERAS_LIMITS.keras_hidden_units,
    doc: "units of the hidden layer",
  }),
  keras_epochs: param.integer({
    min: 1,
    max: KERAS_LIMITS.keras_epochs,
    defaultDoc: bySet(S.keras_epochs, T.keras_epochs),
    doc: "training epochs (early stopping may end sooner)",
  }),
  keras_batch_size: param.integer({
    min: 1,
    max: KERAS_LIMITS.keras_batch_size,
    defaultDoc: `${S.keras_batch_size}`,
    doc: "ratings per gradient step",
  }),
  keras_learning_rate: param.number({
    min: 0,
    minExclusive: true,
    defaultDoc: bySet(S.keras_learning_rate, T.keras_learning_rate),
    doc: "Adam learning rate",
  }),
  keras_patience: param.integer({
    default: d.keras_patience,
    min: 0,
    doc: "early stopping: epochs without a keras_min_delta improvement of val_loss",
  }),
  keras_min_delta: param.number({
    default: d.keras_min_delta,
    min: 0,
    doc: "early stopping: the smallest val_loss improvement that counts",
  }),
  keras_validation_split: param.number({
    default: d.keras_validation_split,
    min: 0,
    max: 1,
    maxExclusive: true,
    doc: "share of the training part held out for val_loss (its last rows, as Keras does)",
  }),
  keras_features: param.choice(FEATURE_SETS, {
    default: d.keras_features,
    doc: "network input: stacked (the fm step's out-of-fold features: Bayesian prediction, biases, counts, implicit feedback), seed/factors (the seed's) or factors+dot",
  }),
  keras_output_bias: param.choice(["zero", "mean"] as const, {
    defaultDoc: bySet(S.keras_output_bias, T.keras_output_bias),
    doc: "initial output bias: zero or the mean training rating",
  }),
  keras_init: param.choice(["glorot", "identity"] as const, {
    defaultDoc: bySet(S.keras_init, T.keras_init),
    doc: "how the network starts: glorot (seeded random kernels, the seed's) or identity (computing its first input exactly, the stacked features' Bayesian prediction, so training learns corrections to it; output bias ignored)",
  }),
  keras_restore_best: param.boolean({
    defaultDoc: bySet(String(S.keras_restore_best), String(T.keras_restore_best)),
    doc: "keep the weights of the epoch with the best val_loss (Keras' restore_best_weights) instead of the last epoch's: the stacked network's later epochs fit the out-of-fold features' noise (tools/bench/results/2026-12-07-quality-restore.md)",
  }),
  keras_seed: param.integer({
    default: d.keras_seed,
    defaultFrom: "seed",
    defaultDoc: "the value of seed",
    doc: "weight initialisation and shuffles",
  }),
  keras_allow_foreign_factors: param.boolean({
    default: d.keras_allow_foreign_factors,
    doc: "train on factors fitted to other ratings than these (refused by default)",
  }),
  keras_backend: param.choice(BACKEND_CHOICES, {
    default: d.keras_backend,
    doc: "trainer: auto and fused train with the fused WebAssembly SIMD kernel (model kept in TensorFlow.js); node, wasm and cpu train with that TensorFlow.js backend (the reference path)",
  }),
};

/** The training defaults of the chosen feature set. */
export function completeKerasParams(p: KerasParams): KerasParams {
  const training = p.keras_features === "stacked" ? STACKED_TRAINING : SEED_TRAINING;
  return {
    ...p,
    keras_epochs: p.keras_epochs ?? training.keras_epochs,
    keras_batch_size: p.keras_batch_size ?? training.keras_batch_size,
    keras_learning_rate: p.keras_learning_rate ?? training.keras_learning_rate,
    keras_output_bias: p.keras_output_bias ?? training.keras_output_bias,
    keras_init: p.keras_init ?? training.keras_init,
    keras_restore_best: p.keras_restore_best ?? training.keras_restore_best,
  };
}

/** Checks and completes the keras step's parameters: the step, its bin and library callers all resolve through it. */
export const resolveKerasParams = paramResolver(kerasParams, completeKerasParams);
