#!/usr/bin/env node
/**
 * `ms-keras`: ratings (etl output) + factors (als output) -> a TensorFlow.js model in --out.
 * SIGINT/SIGTERM stop training at the end of the current batch (exit 130, nothing published); a
 * second one exits at once.
 */
import { abortOnSignals, BadParameterError, formatTable, parseIntegerFlag, parseNumberFlag, runCli } from "@ms/contracts";
import { BACKEND_CHOICES, type BackendChoice } from "./backend.js";
import { FEATURE_SETS, type FeatureSet } from "./features.js";
import { keras, KERAS_DEFAULTS } from "./keras.js";

const D = KERAS_DEFAULTS;

await runCli({
  name: "ms-keras",
  summary: "train the seed's Keras-style network (TensorFlow.js) on ratings plus ALS factors",
  usage: "ms-keras --ratings-data PATH --als-model DIR --out DIR [--hidden-units N] [--epochs N] [--batch-size N] [--learning-rate X] [--patience N] [--backend auto|node|wasm|cpu] [--json]",
  options: {
    "ratings-data": { type: "string", value: "PATH", description: "ratings: the etl output directory or its ratings.parquet (required)" },
    "als-model": { type: "string", value: "DIR", description: "factors: the als output directory (required)" },
    out: { type: "string", value: "DIR", description: "output directory (created; an earlier keras-model output there is replaced)" },
    "hidden-units": { type: "string", value: "N", description: `units of the second dense layer (default ${D.hiddenUnits})` },
    epochs: { type: "string", value: "N", description: `maximum epochs (default ${D.epochs})` },
    "batch-size": { type: "string", value: "N", description: `batch size (default ${D.batchSize})` },
    "learning-rate": { type: "string", value: "X", description: `Adam learning rate (default ${D.learningRate})` },
    patience: { type: "string", value: "N", description: `early stopping patience in epochs on val_loss (default ${D.patience})` },
    "min-delta": { type: "string", value: "X", description: `smallest val_loss improvement that counts (default ${D.minDelta})` },
    "validation-split": { type: "string", value: "X", description: `fraction of the training part held out, its last rows (default ${D.validationSplit})` },
    features: { type: "string", value: "SET", description: `${FEATURE_SETS.join("|")}: network inputs (default ${D.features}, the seed's)` },
    "output-bias": { type: "string", value: "zero|mean", description: `initial output bias (default ${D.outputBias}, the seed's)` },
    seed: { type: "string", value: "N", description: `seed of weight initialisation and shuffles (default ${D.seed})` },
    backend: { type: "string", value: "NAME", description: `${BACKEND_CHOICES.join("|")} (default auto: node, then wasm, then cpu)` },
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
    const outputBias = values["output-bias"] ?? D.outputBias;
    if (outputBias !== "zero" && outputBias !== "mean") throw new BadParameterError("--output-bias", `must be zero or mean, got "${outputBias}"`);
    const interrupt = abortOnSignals(logger);
    const result = await keras(
      { ratings: values["ratings-data"], factors: values["als-model"] },
      {
        hiddenUnits: parseIntegerFlag("--hidden-units", values["hidden-units"], D.hiddenUnits),
        epochs: parseIntegerFlag("--epochs", values.epochs, D.epochs),
        batchSize: parseIntegerFlag("--batch-size", values["batch-size"], D.batchSize),
        learningRate: parseNumberFlag("--learning-rate", values["learning-rate"], D.learningRate),
        patience: parseIntegerFlag("--patience", values.patience, D.patience),
        minDelta: parseNumberFlag("--min-delta", values["min-delta"], D.minDelta),
        validationSplit: parseNumberFlag("--validation-split", values["validation-split"], D.validationSplit),
        seed: parseIntegerFlag("--seed", values.seed, D.seed),
        features: features as FeatureSet,
        outputBias,
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
