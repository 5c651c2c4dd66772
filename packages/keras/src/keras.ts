/**
 * The keras step (the seed's `train_keras`): a small dense network trained on ALS factors to
 * predict ratings, with the seed's defaults, the als step's train/test split, streamed batches,
 * and a TensorFlow.js layers model published atomically with its manifest.
 */
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadInputError,
  BadParameterError,
  buildArtifactDir,
  CorruptArtifactError,
  InterruptedError,
  MsError,
  silentLogger,
  writeManifest,
  type ArtifactRef,
  type Digest,
  type Logger,
  type Manifest,
  type StepContext,
  type StepResult,
} from "@ms/contracts";
import type { LayersModel } from "@tensorflow/tfjs";
import type { StackedTables } from "@ms/als";
import { availableParallelism } from "node:os";
import path from "node:path";
import { loadModelFiles, MODEL_FILE, ratingsDigests, readFactors, readModelManifest, readRatingsColumns, readStackedTables, saveModelFiles, writeStackedTables, type StackedTablesLayout } from "./adapter.js";
import { BACKEND_CHOICES, loadTf, trainsFused, type BackendChoice, type BackendName, type Tf } from "./backend.js";
import { FEATURE_SETS, FeatureAssembler, joinRatings, validationTail, type FactorMatrices, type FeatureSet, type JoinedRatings, type RatingColumns, type RowFeatures } from "./features.js";
import { buildNetwork, evaluateMse, fitNetwork, predictFeatures, type FitOptions, type FitResult } from "./network.js";
import { fitFused, fusedThreads } from "./fused.js";
import { KERAS_VERSION } from "./version.js";

export interface KerasParams {
  hiddenUnits: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Early stopping: epochs without a `minDelta` improvement of val_loss before stopping. */
  patience: number;
  minDelta: number;
  /** Fraction of the training part held out for val_loss: its last rows in file order, as Keras does. */
  validationSplit: number;
  /** `stacked` (out-of-fold features) by default; `seed`/`factors` is the seed's input; see FEATURE_SETS. */
  features: FeatureSet;
  /** Stacked features: the out-of-fold model (`auto`: bayes up to 2M training ratings, als above), its folds, and the Bayesian model's rank, sweeps and burn-in. */
  oofModel: "auto" | "bayes" | "als";
  oofFolds: number;
  bayesRank: number;
  bayesSamples: number;
  bayesBurnIn: number;
  /** Initial output bias: `zero` (the seed's, Keras' default) or the mean training rating. */
  outputBias: "zero" | "mean";
  /** Seeds weight initialisation and the per-epoch shuffles. */
  seed: number;
  backend: BackendChoice;
  /**
   * Train on factors whose manifest records other ratings than the ones given (normally refused
   * as a corrupt pairing: the split and the features would not describe these ratings).
   */
  allowForeignFactors: boolean;
}

/** The seed's training defaults (`features` `seed`/`factors`/`factors+dot`). */
export const SEED_TRAINING = { epochs: 3, batchSize: 128, learningRate: 1e-4, outputBias: "zero" } as const;
/**
 * Training defaults of the stacked features: a handful of well-scaled inputs close to the answer
 * (the Bayesian prediction), so a larger step and the mean rating as starting output pay off.
 */
export const STACKED_TRAINING = { epochs: 6, batchSize: 128, learningRate: 1e-3, outputBias: "mean" } as const;

export const KERAS_DEFAULTS: Readonly<KerasParams> = {
  hiddenUnits: 20,
  ...STACKED_TRAINING,
  patience: 2,
  minDelta: 1e-4,
  validationSplit: 0.2,
  features: "stacked",
  oofModel: "auto",
  oofFolds: 3,
  bayesRank: 10,
  bayesSamples: 40,
  bayesBurnIn: 8,
  seed: 42,
  backend: "auto",
  allowForeignFactors: false,
};

/** The training parameters whose default depends on the feature set. */
const TRAINING_KEYS = ["epochs", "batchSize", "learningRate", "outputBias"] as const;

/** Upper bounds of the size parameters: far above any sensible value, low enough to fail fast instead of exhausting memory. */
export const KERAS_LIMITS = { hiddenUnits: 4096, batchSize: 65_536, epochs: 10_000 } as const;

export interface KerasInputs {
  /** The etl output directory or its ratings.parquet. */
  ratings: string;
  /** The als output directory (factors artifact). */
  factors: string;
}

export interface KerasMetrics {
  [key: string]: number;
  training_nrows: number;
  test_nrows: number;
  validation_nrows: number;
  train_mse: number;
  test_mse: number;
  test_rmse: number;
  dropped_no_factors: number;
  epochs_run: number;
  seconds: number;
}

export interface KerasDetails {
  backend: BackendName;
  rank: number;
  inputWidth: number;
  features: FeatureSet;
  /** The stacked feature columns, in input order. */
  columns?: string[];
  /** Stacked features: the out-of-fold model, and the file holding the full fit's tables (for scoring new pairs). */
  stacked?: { model: "bayes" | "als"; file: string; layout: StackedTablesLayout };
  split: { seed: number; splitProp: number };
  validation: "tail";
  history: { epoch: number; loss: number; val_loss?: number }[];
  factors: { digest: Digest };
  /** `digest`: the ratings given (their artifact digest, or the file's sha256 for a bare Parquet file). */
  ratings: { rows: number; droppedTrain: number; droppedTest: number; digest: Digest };
}

export type KerasManifest = Manifest<KerasParams, KerasMetrics, KerasDetails>;

export interface KerasOutputs {
  [name: string]: ArtifactRef<"keras-model">;
  model: ArtifactRef<"keras-model">;
}

function isPositiveInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1;
}

/** Checks and completes parameters; bins and the driver go through it too. */
export function resolveKerasParams(partial: Partial<KerasParams> = {}): KerasParams {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<KerasParams>;
  const features = defined.features ?? KERAS_DEFAULTS.features;
  const training: Partial<KerasParams> = features === "stacked" ? { ...STACKED_TRAINING } : { ...SEED_TRAINING };
  for (const key of TRAINING_KEYS) if (defined[key] === undefined) delete defined[key];
  const p: KerasParams = { ...KERAS_DEFAULTS, ...training, ...defined };
  const L = KERAS_LIMITS;
  if (!isPositiveInteger(p.hiddenUnits) || p.hiddenUnits > L.hiddenUnits) throw new BadParameterError("hidden_units", `must be an integer in [1, ${L.hiddenUnits}], got ${p.hiddenUnits}`);
  if (!isPositiveInteger(p.epochs) || p.epochs > L.epochs) throw new BadParameterError("epochs", `must be an integer in [1, ${L.epochs}], got ${p.epochs}`);
  if (!isPositiveInteger(p.batchSize) || p.batchSize > L.batchSize) throw new BadParameterError("batch_size", `must be an integer in [1, ${L.batchSize}], got ${p.batchSize}`);
  if (typeof p.learningRate !== "number" || !Number.isFinite(p.learningRate) || p.learningRate <= 0) {
    throw new BadParameterError("learning_rate", `must be a number > 0, got ${p.learningRate}`);
  }
  if (typeof p.patience !== "number" || !Number.isInteger(p.patience) || p.patience < 0) throw new BadParameterError("patience", `must be an integer >= 0, got ${p.patience}`);
  if (typeof p.minDelta !== "number" || !Number.isFinite(p.minDelta) || p.minDelta < 0) throw new BadParameterError("min_delta", `must be a number >= 0, got ${p.minDelta}`);
  if (typeof p.validationSplit !== "number" || !(p.validationSplit >= 0 && p.validationSplit < 1)) {
    throw new BadParameterError("validation_split", `must be in [0, 1), got ${p.validationSplit}`);
  }
  if (!FEATURE_SETS.includes(p.features)) throw new BadParameterError("features", `must be one of ${FEATURE_SETS.join(", ")}, got ${String(p.features)}`);
  checkOof(p);
  if (p.outputBias !== "zero" && p.outputBias !== "mean") throw new BadParameterError("output_bias", `must be "zero" or "mean", got ${String(p.outputBias)}`);
  if (typeof p.seed !== "number" || !Number.isInteger(p.seed)) throw new BadParameterError("seed", `must be an integer, got ${p.seed}`);
  if (!BACKEND_CHOICES.includes(p.backend)) throw new BadParameterError("backend", `must be one of ${BACKEND_CHOICES.join(", ")}, got ${String(p.backend)}`);
  if (typeof p.allowForeignFactors !== "boolean") throw new BadParameterError("allow_foreign_factors", `must be true or false, got ${JSON.stringify(p.allowForeignFactors)}`);
  return p;
}

/** Same limits as @ms/als's `checkOofOptions` (kept here so resolving parameters never loads @ms/als). */
function checkOof(p: KerasParams): void {
  if (!["auto", "bayes", "als"].includes(p.oofModel)) throw new BadParameterError("oof_model", `must be one of auto, bayes, als, got ${String(p.oofModel)}`);
  if (!Number.isInteger(p.oofFolds) || p.oofFolds < 2 || p.oofFolds > 20) throw new BadParameterError("oof_folds", `must be an integer in [2, 20], got ${p.oofFolds}`);
  if (!Number.isInteger(p.bayesRank) || p.bayesRank < 1 || p.bayesRank > 256) throw new BadParameterError("bayes_rank", `must be an integer in [1, 256], got ${p.bayesRank}`);
  if (!Number.isInteger(p.bayesSamples) || p.bayesSamples < 1 || p.bayesSamples > 10_000) throw new BadParameterError("bayes_samples", `must be an integer in [1, 10000], got ${p.bayesSamples}`);
  if (!Number.isInteger(p.bayesBurnIn) || p.bayesBurnIn < 0 || p.bayesBurnIn >= p.bayesSamples) {
    throw new BadParameterError("bayes_burn_in", `must be an integer in [0, bayes_samples - 1 = ${p.bayesSamples - 1}], got ${p.bayesBurnIn}`);
  }
}

/** The stacked feature set's inputs: out-of-fold features of every rating, and the full fit's tables (see @ms/als `outOfFoldFeatures`). */
export async function stackedFeatures(
  ratings: RatingColumns,
  split: { seed: number; splitProp: number },
  params: KerasParams,
  ctx: Partial<StepContext> = {},
  als?: StackedAls,
): Promise<RowFeatures & { columns: readonly string[]; seconds: number; model: "bayes" | "als"; tables: StackedTables }> {
  const logger = ctx.logger ?? silentLogger();
  const { outOfFoldFeatures } = await import("@ms/als");
  const oof = await outOfFoldFeatures(ratings, split, {
    model: params.oofModel,
    folds: params.oofFolds,
    rank: params.bayesRank,
    samples: params.bayesSamples,
    burnIn: params.bayesBurnIn,
    seed: params.seed,
    ...(als ? { als: { ...als, numThreads: availableParallelism() } } : {}),
    signal: ctx.signal,
    onFit: (fit, seconds) => logger.info({ fit: fit + 1, of: params.oofFolds + 1, seconds: round(seconds) }, fit < params.oofFolds ? `keras: out-of-fold fit ${fit + 1}/${params.oofFolds}` : "keras: full-training fit"),
  });
  return { width: oof.width, values: oof.values, columns: oof.columns, seconds: oof.seconds, model: oof.model, tables: oof.tables };
}

/** What the als out-of-fold model needs: the als step's fit settings and its factors (the full fit). */
export interface StackedAls {
  rank: number;
  maxIter: number;
  regParam: number;
  nonnegative: boolean;
  full: FactorMatrices;
}

/** The als step's settings, read from its manifest's parameters (its defaults where one is missing). */
function stackedAls(factors: FactorMatrices & { manifest?: { params?: unknown } }): StackedAls {
  const p = (factors.manifest?.params ?? {}) as Partial<Record<"maxIter" | "regParam" | "nonnegative", unknown>>;
  return {
    rank: factors.rank,
    maxIter: typeof p.maxIter === "number" ? p.maxIter : 10,
    regParam: typeof p.regParam === "number" ? p.regParam : 0.1,
    nonnegative: p.nonnegative === true,
    full: factors,
  };
}

/** What the pure training core returns, before anything is written. */
export interface TrainedNetwork {
  tf: Tf;
  backend: BackendName;
  model: LayersModel;
  metrics: KerasMetrics;
  history: KerasDetails["history"];
  joined: JoinedRatings;
  inputWidth: number;
  /** The stacked feature columns and the full fit's tables, when `features` is `stacked`. */
  columns?: readonly string[];
  stacked?: { model: "bayes" | "als"; tables: StackedTables };
}

/**
 * Trains and evaluates the network on ratings joined to factors, in memory. The step wraps this
 * with reading and publishing; tests and the benchmark call it directly.
 */
export async function trainNetwork(
  ratings: RatingColumns,
  factors: FactorMatrices,
  split: { seed: number; splitProp: number },
  params: KerasParams,
  ctx: Partial<StepContext> = {},
): Promise<TrainedNetwork> {
  const logger = ctx.logger ?? silentLogger();
  const started = performance.now();
  checkFactorShapes(factors);
  const joined = joinRatings(ratings, factors, split);
  const dropped = joined.droppedTrain + joined.droppedTest;
  if (dropped > 0) logger.info({ dropped, train: joined.droppedTrain, test: joined.droppedTest }, "keras: dropped ratings whose user or movie has no factors");
  if (joined.trainRows.length === 0) throw new BadInputError(`no training ratings left after joining ${ratings.rows} ratings to the factors (split seed ${split.seed}, splitProp ${split.splitProp})`);
  const { fitRows, valRows } = validationTail(joined.trainRows, params.validationSplit);
  if (fitRows.length === 0) throw new BadInputError(`only ${joined.trainRows.length} training ratings: nothing left to fit after the validation split ${params.validationSplit}`);
  if (joined.testRows.length === 0) {
    throw new BadInputError(`no test ratings left after joining ${ratings.rows} ratings to the factors (split seed ${split.seed}, splitProp ${split.splitProp}): test_mse would be NaN`);
  }

  const stacked = params.features === "stacked" ? await stackedFeatures(ratings, split, params, { ...ctx, logger }, stackedAls(factors)) : undefined;
  if (ctx.signal?.aborted) throw interruption(ctx.signal);
  // `auto`/`fused` train with the fused WebAssembly kernel; tfjs then only holds and saves the model.
  const fused = trainsFused(params.backend);
  const { tf, backend: tfBackend } = await loadTf(fused ? "fused" : params.backend, logger);
  const backend: BackendName = fused ? "fused" : tfBackend;
  const threads = fused ? fusedThreads(params.batchSize) : 1;
  logger.info({ backend, requested: params.backend, tfjs: tfBackend, ...(fused ? { threads } : {}) }, fused ? `keras: fused WebAssembly trainer (${threads} thread${threads > 1 ? "s" : ""}), model kept in TensorFlow.js ${tfBackend}` : `keras: TensorFlow.js backend ${backend}`);
  const assembler = new FeatureAssembler(params.features, factors, joined, stacked);
  let outputBias = 0;
  if (params.outputBias === "mean") {
    let s = 0;
    for (let i = 0; i < fitRows.length; i++) s += joined.ratings[fitRows[i]];
    outputBias = s / fitRows.length;
  }
  const model = buildNetwork(tf, assembler.width, { hiddenUnits: params.hiddenUnits, learningRate: params.learningRate, seed: params.seed, outputBias });
  const history: KerasDetails["history"] = [];
  // Batch progress within an epoch, at most twice a second: on a terminal the driver's progress
  // line shows it (info); piped, it stays out of the JSON log lines (debug).
  const batches = Math.ceil(fitRows.length / params.batchSize);
  const epochStarted = { at: performance.now(), epoch: 0 };
  let lastBatchLog = 0;
  const onBatch = (batch: number) => {
    const now = performance.now();
    if (now - lastBatchLog < 500) return;
    lastBatchLog = now;
    const perBatch = (now - epochStarted.at) / (batch + 1);
    const line = { epoch: epochStarted.epoch + 1, of: params.epochs, batch: batch + 1, batches, epochEtaSeconds: Math.round((perBatch * (batches - batch - 1)) / 1000) };
    const text = `keras: epoch ${line.epoch}/${params.epochs}, batch ${line.batch}/${batches}`;
    if (ctx.progress) logger.info(line, text);
    else logger.debug(line, text);
  };
  try {
    const fitOptions: FitOptions = {
      onBatch,
      epochs: params.epochs,
      batchSize: params.batchSize,
      patience: params.patience,
      minDelta: params.minDelta,
      seed: params.seed,
      shuffle: true,
      shouldStop: () => ctx.signal?.aborted === true,
      stopOnNonFiniteLoss: true,
      onEpoch: (epoch, logs) => {
        epochStarted.at = performance.now();
        epochStarted.epoch = epoch + 1;
        history.push({ epoch, loss: logs.loss, ...(logs.val_loss !== undefined ? { val_loss: logs.val_loss } : {}) });
        ctx.metrics?.metric("loss", logs.loss, epoch);
        if (logs.val_loss !== undefined) ctx.metrics?.metric("val_loss", logs.val_loss, epoch);
        const rate = fitRows.length / logs.seconds;
        logger.info({ epoch: epoch + 1, of: params.epochs, loss: round(logs.loss), val_loss: logs.val_loss === undefined ? undefined : round(logs.val_loss), samplesPerSecond: Math.round(rate) }, `keras: epoch ${epoch + 1}/${params.epochs}`);
      },
    };
    let fit: FitResult;
    let mse: (rows: Int32Array) => Promise<number>;
    if (fused) {
      // Same initial weights as the tfjs path (the model's seeded glorot-uniform kernels).
      const initial = model.getWeights().map((w) => w.dataSync() as Float32Array);
      const trained = await fitFused(assembler, fitRows, valRows, initial, { ...fitOptions, hiddenUnits: params.hiddenUnits, learningRate: params.learningRate, threads });
      if (!trained.diverged) {
        const tensors = trained.weights.map((w, i) => tf.tensor(w, model.weights[i].shape as number[]));
        model.setWeights(tensors);
        tf.dispose(tensors);
      }
      fit = trained;
      mse = (rows) => trained.mse(rows, ctx.signal);
    } else {
      fit = await fitNetwork(tf, model, assembler, fitRows, valRows, fitOptions);
      mse = (rows) => evaluateMse(tf, model, assembler, rows, undefined, ctx.signal);
    }
    if (ctx.signal?.aborted) throw interruption(ctx.signal);
    if (fit.diverged) {
      const d = fit.diverged;
      throw new BadParameterError("learning_rate", `training diverged: the loss was ${d.loss} at epoch ${d.epoch + 1}, batch ${d.batch + 1}; lower learning_rate (${params.learningRate}; default ${KERAS_DEFAULTS.learningRate})`);
    }
    if (fit.stoppedEarly) logger.info({ epochsRun: fit.epochsRun }, "keras: early stopping on val_loss");
    await refuseNonFiniteWeights(model, params);
    const trainMse = await mse(joined.trainRows);
    const testMse = await mse(joined.testRows);
    const metrics: KerasMetrics = {
      training_nrows: joined.trainRows.length,
      test_nrows: joined.testRows.length,
      validation_nrows: valRows.length,
      train_mse: trainMse,
      test_mse: testMse,
      test_rmse: Math.sqrt(testMse),
      dropped_no_factors: dropped,
      epochs_run: fit.epochsRun,
      seconds: (performance.now() - started) / 1000,
    };
    for (const [key, value] of Object.entries(metrics)) {
      if (!Number.isFinite(value)) throw new BadParameterError("learning_rate", `metric ${key} is ${value}: the trained network overflows; lower learning_rate (${params.learningRate}; default ${KERAS_DEFAULTS.learningRate})`);
    }
    if (stacked) metrics.oof_seconds = stacked.seconds;
    return { tf, backend, model, metrics, history, joined, inputWidth: assembler.width, ...(stacked ? { columns: stacked.columns, stacked: { model: stacked.model, tables: stacked.tables } } : {}) };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

function checkFactorShapes(f: FactorMatrices): void {
  if (!isPositiveInteger(f.rank)) throw new BadInputError(`factor rank must be an integer >= 1, got ${f.rank}`);
  if (f.userFactors.length !== f.userIds.length * f.rank) throw new BadInputError(`user factors hold ${f.userFactors.length} values, expected ${f.userIds.length} users x rank ${f.rank}`);
  if (f.itemFactors.length !== f.itemIds.length * f.rank) throw new BadInputError(`movie factors hold ${f.itemFactors.length} values, expected ${f.itemIds.length} movies x rank ${f.rank}`);
  refuseNonFiniteFactors("user", f.userIds, f.userFactors, f.rank);
  refuseNonFiniteFactors("movie", f.itemIds, f.itemFactors, f.rank);
}

/** A NaN or infinite input factor would make every weight NaN: refuse it, naming the row's id. */
function refuseNonFiniteFactors(side: "user" | "movie", ids: Int32Array, values: Float32Array, rank: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v === 0) continue;
    const row = Math.floor(i / rank);
    throw new BadInputError(`${side} factors of ${side === "user" ? "userId" : "movieId"} ${ids[row]}: feature ${i - row * rank} is ${v}; factors must be finite numbers`);
  }
}

/** No published weight may be NaN or infinite; with finite inputs and bounded sizes the learning rate is the cause. */
async function refuseNonFiniteWeights(model: LayersModel, params: KerasParams): Promise<void> {
  for (const weight of model.weights) {
    const values = (await weight.read().data()) as Float32Array;
    for (let i = 0; i < values.length; i++) {
      if (values[i] - values[i] !== 0) {
        throw new BadParameterError("learning_rate", `training diverged: weight ${weight.name} holds ${values[i]}; lower learning_rate (${params.learningRate}; default ${KERAS_DEFAULTS.learningRate})`);
      }
    }
  }
}

/** The error an aborted step ends with: the signal's reason when it is one of ours, else InterruptedError. */
function interruption(signal: AbortSignal): MsError {
  const reason: unknown = signal.reason;
  return reason instanceof MsError ? reason : new InterruptedError("keras: training interrupted");
}

function round(x: number): number {
  return Number(x.toPrecision(5));
}

/** Runs the keras step into `outDir` (created, or replacing an earlier keras-model output). */
export async function keras(
  inputs: KerasInputs,
  partial: Partial<KerasParams>,
  outDir: string,
  ctx: Partial<StepContext> = {},
): Promise<StepResult<KerasOutputs, KerasMetrics> & { manifest: KerasManifest; modelFile: string }> {
  const params = resolveKerasParams(partial);
  const logger = ctx.logger ?? silentLogger();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "keras-model");
  if (!ctx.inputsVerified) await Promise.all([assertArtifactIntact(inputs.factors, "factors"), assertArtifactIntact(inputs.ratings, "ratings")]);
  const factors = await readFactors(inputs.factors);
  const given = await ratingsDigests(inputs.ratings);
  const fitted = factors.details.ratings;
  if (!given.all.includes(fitted.digest) && !(fitted.fileDigest !== undefined && given.all.includes(fitted.fileDigest))) {
    const what = `${path.resolve(inputs.factors)}: the factors were fitted on ratings ${fitted.digest}, not on the ratings given (${given.digest}, ${given.file})`;
    if (!params.allowForeignFactors) throw new CorruptArtifactError(`${what}; pass --allow-foreign-factors (allow_foreign_factors) to train on them anyway`);
    logger.warn({ factorsRatings: fitted.digest, ratings: given.digest }, `keras: ${what}; training anyway (allow_foreign_factors)`);
  }
  const ratings = await readRatingsColumns(inputs.ratings);
  if (ctx.signal?.aborted) throw interruption(ctx.signal);
  const split = { seed: factors.details.seed, splitProp: factors.details.splitProp };
  logger.info({ ratings: ratings.rows, rank: factors.rank, users: factors.userIds.length, movies: factors.itemIds.length, features: params.features, split }, "keras: training");
  const trained = await trainNetwork(ratings, factors, split, params, { ...ctx, logger });
  try {
    const { metrics } = trained;
    return await buildArtifactDir(target, async (staging) => {
      const files = await saveModelFiles(trained.tf, trained.model, staging);
      const tables = trained.stacked ? await writeStackedTables(staging, trained.stacked.tables) : undefined;
      if (tables) files.push(tables.file);
      if (ctx.signal?.aborted) throw interruption(ctx.signal);
      const details: KerasDetails = {
        backend: trained.backend,
        rank: factors.rank,
        inputWidth: trained.inputWidth,
        features: params.features,
        ...(trained.columns ? { columns: [...trained.columns] } : {}),
        ...(trained.stacked && tables ? { stacked: { model: trained.stacked.model, file: tables.file, layout: tables.layout } } : {}),
        split,
        validation: "tail",
        history: trained.history,
        factors: { digest: factors.manifest.digest },
        ratings: { rows: ratings.rows, droppedTrain: trained.joined.droppedTrain, droppedTest: trained.joined.droppedTest, digest: given.digest },
      };
      const manifest = await writeManifest(staging, {
        kind: "keras-model",
        files,
        params,
        metrics,
        details,
        producedBy: { step: "keras", version: KERAS_VERSION },
      });
      for (const key of ["training_nrows", "test_nrows", "train_mse", "test_mse", "test_rmse", "dropped_no_factors", "epochs_run"] as const) ctx.metrics?.metric(key, metrics[key]);
      logger.info({ test_rmse: round(metrics.test_rmse), train_mse: round(metrics.train_mse), test_mse: round(metrics.test_mse), seconds: round(metrics.seconds) }, "keras: done");
      return {
        outputs: { model: { kind: "keras-model", dir: target, digest: manifest.digest } },
        metrics,
        manifest,
        modelFile: path.join(target, MODEL_FILE),
      };
    });
  } finally {
    trained.model.dispose();
  }
}

/** A model loaded back from a keras-model directory. */
export interface LoadedModel {
  tf: Tf;
  backend: BackendName;
  model: LayersModel;
  manifest: KerasManifest;
  inputWidth: number;
  /** A stacked model's full-fit tables: what `predictPairs` builds a new pair's features from. */
  stacked?: StackedTables;
}

export async function loadModel(dir: string, options: { backend?: BackendChoice; logger?: Logger } = {}): Promise<LoadedModel> {
  const abs = path.resolve(dir);
  const manifest = await readModelManifest<KerasParams, KerasMetrics, KerasDetails>(abs);
  const recorded = manifest.details.stacked;
  const stacked = recorded ? await readStackedTables(abs, recorded.model, recorded.layout) : undefined;
  const { tf, backend } = await loadTf(options.backend ?? "auto", options.logger);
  const model = await loadModelFiles(tf, abs);
  return { tf, backend, model, manifest, inputWidth: manifest.details.inputWidth, ...(stacked ? { stacked } : {}) };
}

/** Predicted ratings for a row-major feature matrix (`n * inputWidth` floats, the training layout). */
export function predict(loaded: LoadedModel, features: Float32Array): Promise<Float32Array> {
  return predictFeatures(loaded.tf, loaded.model, features);
}

/**
 * Predicted ratings of (userIds[i], movieIds[i]) by a stacked model: each pair's features from
 * the full fit's tables (exactly as its test rows had them), then the network. An id without
 * training ratings is a BadParameterError naming it.
 */
export async function predictStackedPairs(loaded: LoadedModel, userIds: ArrayLike<number>, movieIds: ArrayLike<number>): Promise<Float32Array> {
  if (!loaded.stacked) throw new BadParameterError("--model", `the keras model was trained on the "${loaded.manifest.details.features}" features, not the stacked ones`);
  const { stackedPairFeatures } = await import("@ms/als");
  return predict(loaded, stackedPairFeatures(loaded.stacked, userIds, movieIds));
}

/**
 * Re-scores a saved model on the ratings and factors it was trained with (same split, same
 * features): the test and train MSE, which must match the manifest's metrics.
 */
export async function evaluateModel(dir: string, inputs: KerasInputs, options: { backend?: BackendChoice; logger?: Logger } = {}): Promise<{ train_mse: number; test_mse: number; test_nrows: number }> {
  const loaded = await loadModel(dir, options);
  try {
    const factors = await readFactors(inputs.factors);
    const ratings = await readRatingsColumns(inputs.ratings);
    const { details } = loaded.manifest;
    if (factors.rank !== details.rank) throw new BadInputError(`factors of rank ${factors.rank} given to a model trained on rank ${details.rank}`, { file: inputs.factors });
    const joined = joinRatings(ratings, factors, details.split);
    const params = loaded.manifest.params;
    const stacked = details.features === "stacked" ? await stackedFeatures(ratings, details.split, params, { logger: options.logger }, stackedAls(factors)) : undefined;
    const assembler = new FeatureAssembler(details.features, factors, joined, stacked);
    return {
      train_mse: await evaluateMse(loaded.tf, loaded.model, assembler, joined.trainRows),
      test_mse: await evaluateMse(loaded.tf, loaded.model, assembler, joined.testRows),
      test_nrows: joined.testRows.length,
    };
  } finally {
    loaded.model.dispose();
  }
}
