/**
 * The keras step's training core, in memory: ratings joined to factors, the stacked features
 * (the fm step's out-of-fold features, given), the network built and fitted by the fused WebAssembly trainer or
 * TensorFlow.js, and its metrics. Nothing here reads or writes files; keras.ts does.
 */
import {
  BadInputError,
  BadParameterError,
  InterruptedError,
  MissingArtifactError,
  MsError,
  silentLogger,
  type Logger,
  type SplitSpec,
  type StepContext,
} from "@ms/contracts";
import type { LayersModel } from "@tensorflow/tfjs";
import type { StackedTables } from "@ms/fm";
import { loadTf, trainsFused, type BackendName, type Tf } from "./backend.js";
import {
  coldTestErrors,
  FeatureAssembler,
  joinRatings,
  validationTail,
  type FactorMatrices,
  type JoinedRatings,
  type RatingColumns,
  type RowFeatures,
} from "./features.js";
import { buildNetwork, evaluateMse, fitNetwork, type FitOptions, type FitResult } from "./network.js";
import { fitFused, fusedThreads } from "./fused.js";
import { KERAS_DEFAULTS, type KerasParams } from "./params.js";
import type { KerasDetails, KerasMetrics } from "./types.js";

function isPositiveInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1;
}

/**
 * The stacked feature set's inputs, as the fm step published them (see @ms/fm `readFmArtifact`):
 * `width` values per rating of the ratings given, in their order, and the full fit's tables.
 */
export interface StackedInput extends RowFeatures {
  columns: readonly string[];
  model: "bayes" | "als";
  tables: StackedTables;
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

/** Ratings joined to factors and cut into fit, validation and test rows; refuses a split that leaves nothing to fit or test. */
function joinForTraining(ratings: RatingColumns, factors: FactorMatrices, split: SplitSpec, params: KerasParams, logger: Logger) {
  checkFactorShapes(factors);
  const joined = joinRatings(ratings, factors, split);
  const dropped = joined.droppedTrain + joined.droppedTest;
  if (dropped > 0)
    logger.info(
      { dropped, train: joined.droppedTrain, test: joined.droppedTest },
      "keras: dropped ratings whose user or movie has no factors",
    );
  const where = `after joining ${ratings.rows} ratings to the factors (split ${split.kind ?? "hash"}, seed ${split.seed}, splitProp ${split.splitProp}${split.fold ? `, fold ${split.fold} of ${split.folds}` : ""})`;
  if (joined.trainRows.length === 0) throw new BadInputError(`no training ratings left ${where}`);
  const { fitRows, valRows } = validationTail(joined.trainRows, params.keras_validation_split);
  if (fitRows.length === 0)
    throw new BadInputError(
      `only ${joined.trainRows.length} training ratings: nothing left to fit after the validation split ${params.keras_validation_split}`,
    );
  if (joined.testRows.length === 0) throw new BadInputError(`no test ratings left ${where}: test_mse would be NaN`);
  return { joined, dropped, fitRows, valRows };
}

/** The fit's options: its sizes, and progress (batches at most twice a second, every epoch) to the log and the metrics sink. */
function fitOptionsFor(
  params: KerasParams,
  fitRows: number,
  ctx: Partial<StepContext>,
  logger: Logger,
): { options: FitOptions; history: KerasDetails["history"] } {
  const history: KerasDetails["history"] = [];
  // On a terminal the driver's progress line shows batch progress (info); piped, it stays out of the JSON log lines (debug).
  const batches = Math.ceil(fitRows / params.keras_batch_size);
  const epochStarted = { at: performance.now(), epoch: 0 };
  // The first batch is always reported (then at most twice a second), however soon after start it ends.
  let lastBatchLog = Number.NEGATIVE_INFINITY;
  const onBatch = (batch: number) => {
    const now = performance.now();
    if (now - lastBatchLog < 500) return;
    lastBatchLog = now;
    const perBatch = (now - epochStarted.at) / (batch + 1);
    const line = {
      epoch: epochStarted.epoch + 1,
      of: params.keras_epochs,
      batch: batch + 1,
      batches,
      epochEtaSeconds: Math.round((perBatch * (batches - batch - 1)) / 1000),
    };
    const text = `keras: epoch ${line.epoch}/${params.keras_epochs}, batch ${line.batch}/${batches}`;
    if (ctx.progress) logger.info(line, text);
    else logger.debug(line, text);
  };
  const options: FitOptions = {
    onBatch,
    epochs: params.keras_epochs,
    batchSize: params.keras_batch_size,
    patience: params.keras_patience,
    minDelta: params.keras_min_delta,
    seed: params.keras_seed,
    shuffle: true,
    restoreBest: params.keras_restore_best,
    shouldStop: () => ctx.signal?.aborted === true,
    stopOnNonFiniteLoss: true,
    onEpoch: (epoch, logs) => {
      epochStarted.at = performance.now();
      epochStarted.epoch = epoch + 1;
      history.push({ epoch, loss: logs.loss, ...(logs.val_loss !== undefined ? { val_loss: logs.val_loss } : {}) });
      ctx.metrics?.metric("loss", logs.loss, epoch);
      if (logs.val_loss !== undefined) ctx.metrics?.metric("val_loss", logs.val_loss, epoch);
      const view = {
        epoch: epoch + 1,
        of: params.keras_epochs,
        loss: round(logs.loss),
        val_loss: logs.val_loss === undefined ? undefined : round(logs.val_loss),
        samplesPerSecond: Math.round(fitRows / logs.seconds),
      };
      logger.info(view, `keras: epoch ${epoch + 1}/${params.keras_epochs}`);
    },
  };
  return { options, history };
}

interface Fitting {
  tf: Tf;
  model: LayersModel;
  assembler: FeatureAssembler;
  fitRows: Int32Array;
  valRows: Int32Array;
}

/** Fits the model with the fused kernel (weights copied back into the model) or TensorFlow.js; `mse` scores rows the same way. */
async function fitWith(
  fused: boolean,
  f: Fitting,
  options: FitOptions,
  params: KerasParams,
  signal: AbortSignal | undefined,
): Promise<{ fit: FitResult; mse: (rows: Int32Array) => Promise<number> }> {
  const { tf, model, assembler } = f;
  if (!fused) {
    const fit = await fitNetwork(tf, model, assembler, f.fitRows, f.valRows, options);
    return { fit, mse: (rows) => evaluateMse(tf, model, assembler, rows, undefined, signal) };
  }
  // Same initial weights as the tfjs path (the model's seeded glorot-uniform kernels).
  const initial = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const threads = fusedThreads(params.keras_batch_size);
  const trained = await fitFused(assembler, f.fitRows, f.valRows, initial, {
    ...options,
    hiddenUnits: params.keras_hidden_units,
    learningRate: params.keras_learning_rate,
    threads,
  });
  if (!trained.diverged) {
    const tensors = trained.weights.map((w, i) => tf.tensor(w, model.weights[i].shape as number[]));
    model.setWeights(tensors);
    tf.dispose(tensors);
  }
  return { fit: trained, mse: (rows) => trained.mse(rows, signal) };
}

/** The mean training rating over the fit rows, when the output bias starts there. */
function initialOutputBias(params: KerasParams, joined: JoinedRatings, fitRows: Int32Array): number {
  if (params.keras_output_bias !== "mean") return 0;
  let s = 0;
  for (let i = 0; i < fitRows.length; i++) s += joined.ratings[fitRows[i]];
  return s / fitRows.length;
}

/**
 * Trains and evaluates the network on ratings joined to factors, in memory. The step wraps this
 * with reading and publishing; tests and the benchmark call it directly. `params` are resolved
 * (`resolveKerasParams`).
 */
export async function trainNetwork(
  ratings: RatingColumns,
  factors: FactorMatrices,
  split: SplitSpec,
  params: KerasParams,
  ctx: Partial<StepContext> = {},
  features?: StackedInput,
): Promise<TrainedNetwork> {
  const logger = ctx.logger ?? silentLogger();
  const started = performance.now();
  const { joined, dropped, fitRows, valRows } = joinForTraining(ratings, factors, split, params, logger);
  const stacked = params.keras_features === "stacked" ? stackedFor(features, ratings.rows) : undefined;
  if (ctx.signal?.aborted) throw interruption(ctx.signal);
  // `auto`/`fused` train with the fused WebAssembly kernel; tfjs then only holds and saves the model.
  const fused = trainsFused(params.keras_backend);
  const { tf, backend: tfBackend } = await loadTf(fused ? "fused" : params.keras_backend, logger);
  const backend: BackendName = fused ? "fused" : tfBackend;
  const threads = fused ? fusedThreads(params.keras_batch_size) : 1;
  logger.info(
    { backend, requested: params.keras_backend, tfjs: tfBackend, ...(fused ? { threads } : {}) },
    fused
      ? `keras: fused WebAssembly trainer (${threads} thread${threads > 1 ? "s" : ""}), model kept in TensorFlow.js ${tfBackend}`
      : `keras: TensorFlow.js backend ${backend}`,
  );
  const assembler = new FeatureAssembler(params.keras_features, factors, joined, stacked);
  const outputBias = initialOutputBias(params, joined, fitRows);
  const model = buildNetwork(tf, assembler.width, {
    hiddenUnits: params.keras_hidden_units,
    learningRate: params.keras_learning_rate,
    seed: params.keras_seed,
    outputBias,
    identity: params.keras_init === "identity",
  });
  try {
    const { options, history } = fitOptionsFor(params, fitRows.length, ctx, logger);
    const { fit, mse } = await fitWith(fused, { tf, model, assembler, fitRows, valRows }, options, params, ctx.signal);
    if (ctx.signal?.aborted) throw interruption(ctx.signal);
    if (fit.diverged) {
      const d = fit.diverged;
      throw new BadParameterError(
        "keras_learning_rate",
        `training diverged: the loss was ${d.loss} at epoch ${d.epoch + 1}, batch ${d.batch + 1}; lower keras_learning_rate (${params.keras_learning_rate}; default ${KERAS_DEFAULTS.keras_learning_rate})`,
      );
    }
    if (fit.stoppedEarly) logger.info({ epochsRun: fit.epochsRun }, "keras: early stopping on val_loss");
    await refuseNonFiniteWeights(model, params);
    const trainMse = await mse(joined.trainRows);
    const test = withColdTestRows(await mse(joined.testRows), joined.testRows.length, ratings, factors, split);
    const metrics: KerasMetrics = {
      training_nrows: joined.trainRows.length,
      test_nrows: test.rows,
      validation_nrows: valRows.length,
      train_mse: trainMse,
      test_mse: test.mse,
      test_rmse: Math.sqrt(test.mse),
      test_cold_rows: joined.droppedTest,
      dropped_no_factors: dropped,
      epochs_run: fit.epochsRun,
      // keras_restore_best: the (1-based) epoch whose weights the network kept.
      ...(fit.bestEpoch !== undefined ? { best_epoch: fit.bestEpoch + 1 } : {}),
      seconds: (performance.now() - started) / 1000,
    };
    for (const [key, value] of Object.entries(metrics)) {
      if (!Number.isFinite(value))
        throw new BadParameterError(
          "keras_learning_rate",
          `metric ${key} is ${value}: the trained network overflows; lower keras_learning_rate (${params.keras_learning_rate}; default ${KERAS_DEFAULTS.keras_learning_rate})`,
        );
    }
    return {
      tf,
      backend,
      model,
      metrics,
      history,
      joined,
      inputWidth: assembler.width,
      ...(stacked ? { columns: stacked.columns, stacked: { model: stacked.model, tables: stacked.tables } } : {}),
    };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** The stacked features, which must describe every rating given. */
function stackedFor(features: StackedInput | undefined, rows: number): StackedInput {
  if (!features)
    throw new MissingArtifactError(
      "keras: keras_features=stacked trains on the fm step's features, and none were given (the features input)",
    );
  if (features.values.length !== rows * features.width)
    throw new BadInputError(`the fm features hold ${features.values.length} values, expected ${rows} ratings x ${features.width} columns`);
  return features;
}

/**
 * The test error and its row count. split=file never drops a test row: those without factors are
 * scored by the cold-start rule, mse = (mse_warm * n_warm + sse_cold) / (n_warm + n_cold). The
 * other splits keep today's figure over the rows with factors (the cold count is reported).
 */
function withColdTestRows(
  warmMse: number,
  warmRows: number,
  ratings: RatingColumns,
  factors: FactorMatrices,
  split: SplitSpec,
): { mse: number; rows: number } {
  if (split.kind !== "file") return { mse: warmMse, rows: warmRows };
  const cold = coldTestErrors(ratings, factors, split);
  if (cold.rows === 0) return { mse: warmMse, rows: warmRows };
  return { mse: ((warmRows > 0 ? warmMse * warmRows : 0) + cold.sse) / (warmRows + cold.rows), rows: warmRows + cold.rows };
}

function checkFactorShapes(f: FactorMatrices): void {
  if (!isPositiveInteger(f.rank)) throw new BadInputError(`factor rank must be an integer >= 1, got ${f.rank}`);
  if (f.userFactors.length !== f.userIds.length * f.rank)
    throw new BadInputError(`user factors hold ${f.userFactors.length} values, expected ${f.userIds.length} users x rank ${f.rank}`);
  if (f.itemFactors.length !== f.itemIds.length * f.rank)
    throw new BadInputError(`movie factors hold ${f.itemFactors.length} values, expected ${f.itemIds.length} movies x rank ${f.rank}`);
  refuseNonFiniteFactors("user", f.userIds, f.userFactors, f.rank);
  refuseNonFiniteFactors("movie", f.itemIds, f.itemFactors, f.rank);
}

/** A NaN or infinite input factor would make every weight NaN: refuse it, naming the row's id. */
function refuseNonFiniteFactors(side: "user" | "movie", ids: Int32Array, values: Float32Array, rank: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v === 0) continue;
    const row = Math.floor(i / rank);
    throw new BadInputError(
      `${side} factors of ${side === "user" ? "userId" : "movieId"} ${ids[row]}: feature ${i - row * rank} is ${v}; factors must be finite numbers`,
    );
  }
}

/** No published weight may be NaN or infinite; with finite inputs and bounded sizes the learning rate is the cause. */
async function refuseNonFiniteWeights(model: LayersModel, params: KerasParams): Promise<void> {
  for (const weight of model.weights) {
    const values = (await weight.read().data()) as Float32Array;
    for (let i = 0; i < values.length; i++) {
      if (values[i] - values[i] !== 0) {
        throw new BadParameterError(
          "keras_learning_rate",
          `training diverged: weight ${weight.name} holds ${values[i]}; lower keras_learning_rate (${params.keras_learning_rate}; default ${KERAS_DEFAULTS.keras_learning_rate})`,
        );
      }
    }
  }
}

/** The error an aborted step ends with: the signal's reason when it is one of ours, else InterruptedError. */
export function interruption(signal: AbortSignal): MsError {
  const reason: unknown = signal.reason;
  return reason instanceof MsError ? reason : new InterruptedError("keras: training interrupted");
}

export function round(x: number): number {
  return Number(x.toPrecision(5));
}
