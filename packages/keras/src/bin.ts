#!/usr/bin/env node
/**
 * `ms-keras`: ratings (etl output) + factors (als output) -> a TensorFlow.js model in --out.
 * SIGINT/SIGTERM stop training at the end of the current batch (exit 130, nothing published); a
 * second one exits at once.
 */
import { abortOnSignals, BadParameterError, formatTable, parseIntegerFlag, parseNumberFlag, runCli } from "@ms/contracts";
import { BACKEND_CHOICES, type BackendChoice } from "./backend.js";
import { FEATURE_SETS, type FeatureSet } from "./features.js";
import { keras, KERAS_DEFAULTS, SEED_TRAINING, STACKED_TRAINING } from "./keras.js";

const D = KERAS_DEFAULTS;
const S = STACKED_TRAINING;
const T = SEED_TRAINING;
const optional = <V>(text: string | undefined, parse: (t: string) => V): V | undefined => (text === undefined ? undefined : parse(text));

await runCli({
  name: "ms-keras",
  summary: "train the seed's Keras-style network (TensorFlow.js) on ratings plus ALS factors",
  usage: "ms-keras --ratings-data PATH --als-model DIR --out DIR [--hidden-units N] [--epochs N] [--batch-size N] [--learning-rate X] [--patience N] [--backend auto|fused|node|wasm|cpu] [--json]",
  options: {
    "ratings-data": { type: "string", value: "PATH", description: "ratings: the etl output directory or its ratings.parquet (required)" },
    "als-model": { type: "string", value: "DIR", description: "factors: the als output directory (required)" },
    out: { type: "string", value: "DIR", description: "output directory (created; an earlier keras-model output there is replaced)" },
    "hidden-units": { type: "string", value: "N", description: `units of the second dense layer (default ${D.hiddenUnits})` },
    epochs: { type: "string", value: "N", description: `maximum epochs (default ${S.epochs} stacked, ${T.epochs} the seed's features)` },
    "batch-size": { type: "string", value: "N", description: `batch size (default ${S.batchSize})` },
    "learning-rate": { type: "string", value: "X", description: `Adam learning rate (default ${S.learningRate} stacked, ${T.learningRate} the seed's features)` },
    patience: { type: "string", value: "N", description: `early stopping patience in epochs on val_loss (default ${D.patience})` },
    "min-delta": { type: "string", value: "X", description: `smallest val_loss improvement that counts (default ${D.minDelta})` },
    "validation-split": { type: "string", value: "X", description: `fraction of the training part held out, its last rows (default ${D.validationSplit})` },
    features: { type: "string", value: "SET", description: `${FEATURE_SETS.join("|")}: network inputs (default ${D.features}: out-of-fold features; seed or factors: the seed's)` },
    "oof-folds": { type: "string", value: "N", description: `stacked: folds of the training part (default ${D.oofFolds})` },
    "bayes-rank": { type: "string", value: "N", description: `stacked: rank of the Bayesian factor model (default ${D.bayesRank})` },
    "bayes-samples": { type: "string", value: "N", description: `stacked: Gibbs sweeps per fit (default ${D.bayesSamples})` },
    "bayes-burn-in": { type: "string", value: "N", description: `stacked: sweeps discarded before averaging (default ${D.bayesBurnIn})` },
    "output-bias": { type: "string", value: "zero|mean", description: `initial output bias (default ${S.outputBias} stacked, ${T.outputBias} the seed's features)` },
    seed: { type: "string", value: "N", description: `seed of weight initialisation and shuffles (default ${D.seed})` },
    backend: { type: "string", value: "NAME", description: `${BACKEND_CHOICES.join("|")} (default auto = fused: the WebAssembly SIMD trainer; node, wasm, cpu train through tfjs)` },
    "allow-foreign-factors": { type: "boolean", description: "train even if the factors were fitted on other ratings than --ratings-data (refused by default, exit 5)" },
  },
  async run(values, _positionals, { logger, interactive }) {
    if (!values["ratings-data"]) throw new BadParameterError("--ratings-data", "is required");
    if (!values["als-model"]) throw new BadParameterError("--als-model", "is required");
    if (!values.out) throw new BadParameterError("--out", "is required");
    const backend = values.backend ?? D.backend;
    if (!(BACKEND_CHOICES as readonly string[]).includes(backend)) throw new BadParameterError("--backend", `must be one of ${BACKEND_CHOICES.join(", ")}, got "${backend}"`);
    const features = values.features ?? D.features;
    if (!(FEATURE_SETS as readonly string[]).includes(features)) throw new BadParameterError("--features", `must be one of ${FEATURE_SETS.join(", ")}, got "${features}"`);
    const outputBias = values["output-bias"];
    if (outputBias !== undefined && outputBias !== "zero" && outputBias !== "mean") throw new BadParameterError("--output-bias", `must be zero or mean, got "${outputBias}"`);
    const interrupt = abortOnSignals(logger);
    const result = await keras(
      { ratings: values["ratings-data"], factors: values["als-model"] },
      {
        hiddenUnits: parseIntegerFlag("--hidden-units", values["hidden-units"], D.hiddenUnits),
        epochs: optional(values.epochs, (t) => parseIntegerFlag("--epochs", t, 0)),
        batchSize: optional(values["batch-size"], (t) => parseIntegerFlag("--batch-size", t, 0)),
        learningRate: optional(values["learning-rate"], (t) => parseNumberFlag("--learning-rate", t, 0)),
        oofFolds: parseIntegerFlag("--oof-folds", values["oof-folds"], D.oofFolds),
        bayesRank: parseIntegerFlag("--bayes-rank", values["bayes-rank"], D.bayesRank),
        bayesSamples: parseIntegerFlag("--bayes-samples", values["bayes-samples"], D.bayesSamples),
        bayesBurnIn: parseIntegerFlag("--bayes-burn-in", values["bayes-burn-in"], D.bayesBurnIn),
        patience: parseIntegerFlag("--patience", values.patience, D.patience),
        minDelta: parseNumberFlag("--min-delta", values["min-delta"], D.minDelta),
        validationSplit: parseNumberFlag("--validation-split", values["validation-split"], D.validationSplit),
        seed: parseIntegerFlag("--seed", values.seed, D.seed),
        features: features as FeatureSet,
        ...(outputBias !== undefined ? { outputBias } : {}),
        backend: backend as BackendChoice,
        allowForeignFactors: values["allow-foreign-factors"] === true,
      },
      values.out,
      { logger, progress: interactive, signal: interrupt.signal },
    ).finally(() => interrupt.dispose());
    const m = result.metrics;
    return {
      json: { outputs: { model: { path: result.modelFile } }, metrics: m },
      text: formatTable([
        ["model", result.modelFile],
        ["backend", result.manifest.details.backend],
        ["training_nrows", m.training_nrows],
        ["test_nrows", m.test_nrows],
        ["train_mse", m.train_mse],
        ["test_mse", m.test_mse],
        ["test_rmse", m.test_rmse],
        ["epochs_run", m.epochs_run],
        ["seconds", m.seconds],
      ]),
    };
  },
});
