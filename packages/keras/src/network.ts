/**
 * The seed's network and its training loop, over batches streamed from typed arrays:
 * Dense(30, relu) -> Dense(hidden_units, relu) -> Dense(1, linear), MSE, Adam, early stopping on
 * validation loss. Training goes through `fitDataset` with a generator that fills one
 * preallocated buffer per batch, so memory stays bounded whatever the number of ratings.
 */
import type { LayersModel, Sequential, Tensor, TensorContainer } from "@tensorflow/tfjs";
import { InterruptedError, MsError } from "@ms/contracts";
import type { Tf } from "./backend.js";
import { type FeatureAssembler, mulberry32, shuffleInPlace } from "./features.js";

export interface NetworkParams {
  hiddenUnits: number;
  learningRate: number;
  /** Seeds weight initialisation and the per-epoch shuffles. */
  seed: number;
  /** Start the output bias at this value (the seed starts at 0; the mean rating saves epochs). Ignored with `identity`. */
  outputBias: number;
  /** Start as the identity on input 0 (see `startAsIdentity`) instead of from the seeded kernels alone. */
  identity?: boolean;
}

/**
 * How far input 0 is shifted on its way through the two ReLU layers (and shifted back by the
 * output bias): relu(x + 8) = x + 8 for every x > -8, so any rating-scale prediction passes.
 */
export const IDENTITY_SHIFT = 8;

export function buildNetwork(tf: Tf, inputWidth: number, params: NetworkParams): Sequential {
  // Fixed names: tfjs numbers layers globally per process, and the names end up in model.json,
  // so identical training must not give different artifact digests.
  const model = tf.sequential({ name: "ms_keras" });
  const init = (k: number) => tf.initializers.glorotUniform({ seed: params.seed + k });
  model.add(tf.layers.dense({ name: "dense_1", units: 30, activation: "relu", inputShape: [inputWidth], kernelInitializer: init(1) }));
  model.add(tf.layers.dense({ name: "dense_2", units: params.hiddenUnits, activation: "relu", kernelInitializer: init(2) }));
  model.add(
    tf.layers.dense({
      name: "dense_3",
      units: 1,
      activation: "linear",
      kernelInitializer: init(3),
      biasInitializer: tf.initializers.constant({ value: params.outputBias }),
    }),
  );
  if (params.identity) startAsIdentity(tf, model, inputWidth, params.hiddenUnits);
  model.compile({ loss: "meanSquaredError", optimizer: tf.train.adam(params.learningRate) });
  return model;
}

/**
 * Rewrites the seeded weights so the network computes its input 0 exactly: unit 0 of each hidden
 * layer carries x_0 + IDENTITY_SHIFT alone (its column is e_0, its bias the shift, then 0), the
 * output reads unit 0 with weight 1 and bias -IDENTITY_SHIFT, and every other output weight is 0.
 * The other hidden units keep their seeded kernels, so training starts from the stacked model's
 * own prediction (the fm step's) and learns corrections to it. Why: started from random weights,
 * the network spent its few epochs rediscovering that prediction, and where it stopped depended
 * on the seed (ml-latest-small test RMSE 0.826-0.846 over six seeds against the fm step's 0.828).
 */
function startAsIdentity(tf: Tf, model: Sequential, inputWidth: number, hidden: number): void {
  const [k1, b1, k2, b2, k3, b3] = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  const h1 = b1.length;
  for (let i = 0; i < inputWidth; i++) k1[i * h1] = i === 0 ? 1 : 0;
  b1[0] = IDENTITY_SHIFT;
  for (let j = 0; j < h1; j++) k2[j * hidden] = j === 0 ? 1 : 0;
  b2[0] = 0;
  k3.fill(0);
  k3[0] = 1;
  b3[0] = -IDENTITY_SHIFT;
  const shapes = model.weights.map((w) => w.shape as number[]);
  const tensors = [k1, b1, k2, b2, k3, b3].map((w, i) => tf.tensor(w, shapes[i]));
  model.setWeights(tensors);
  tf.dispose(tensors);
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  patience: number;
  minDelta: number;
  seed: number;
  /** Shuffle the fit rows at each epoch (Keras' `shuffle=True` default). */
  shuffle: boolean;
  onEpoch?: (epoch: number, logs: { loss: number; val_loss?: number; seconds: number }) => void;
  onBatch?: (batch: number) => void;
  /** Polled between batches; true stops training at the end of the batch. */
  shouldStop?: () => boolean;
  /** Stop at the first batch whose loss is NaN or infinite (reported as `diverged`): nothing can recover from it. */
  stopOnNonFiniteLoss?: boolean;
  /**
   * End with the weights of the epoch whose val_loss was the best (an improvement as early stopping
   * counts one: by more than minDelta), as Keras' `restore_best_weights`; without validation rows, the last.
   */
  restoreBest?: boolean;
}

export interface FitResult {
  epochsRun: number;
  stoppedEarly: boolean;
  /** With `restoreBest`: the epoch (0-based) whose weights the network ends with. */
  bestEpoch?: number;
  history: { loss: number; val_loss?: number }[];
  /** Set when `stopOnNonFiniteLoss` stopped training: where the loss stopped being finite. */
  diverged?: { epoch: number; batch: number; loss: number };
}

/**
 * A tf.data dataset of ready batches from `rows`, filled into one reused buffer pair. Reuse is
 * safe on every backend: ops run eagerly and fitDataset disposes a batch's tensors before it pulls
 * the next one, so no live tensor still reads a buffer when it is refilled (cpu and tfjs-node
 * alias the array instead of copying it).
 */
export function batchDataset(
  tf: Tf,
  assembler: FeatureAssembler,
  rows: Int32Array,
  batchSize: number,
  options: { shuffleSeed?: number } = {},
) {
  const width = assembler.width;
  const order = options.shuffleSeed === undefined ? rows : rows.slice();
  let epoch = 0;
  const xBuf = new Float32Array(batchSize * width);
  const yBuf = new Float32Array(batchSize);
  return tf.data.generator(function* () {
    if (options.shuffleSeed !== undefined)
      shuffleInPlace(order, mulberry32((options.shuffleSeed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0));
    epoch++;
    for (let start = 0; start < order.length; start += batchSize) {
      const count = Math.min(batchSize, order.length - start);
      assembler.fill(order, start, count, xBuf, yBuf);
      const xs = tf.tensor2d(count === batchSize ? xBuf : xBuf.subarray(0, count * width), [count, width]);
      const ys = tf.tensor2d(count === batchSize ? yBuf : yBuf.subarray(0, count), [count, 1]);
      yield { xs, ys } as TensorContainer;
    }
  } as () => Iterator<TensorContainer>);
}

/** Trains with `fitDataset`; validation loss is computed on `valRows` at the end of every epoch. */
export async function fitNetwork(
  tf: Tf,
  model: LayersModel,
  assembler: FeatureAssembler,
  fitRows: Int32Array,
  valRows: Int32Array,
  options: FitOptions,
): Promise<FitResult> {
  const train = batchDataset(tf, assembler, fitRows, options.batchSize, options.shuffle ? { shuffleSeed: options.seed } : {});
  const validation = valRows.length > 0 ? batchDataset(tf, assembler, valRows, Math.max(options.batchSize, 4096)) : undefined;
  const early = tf.callbacks.earlyStopping({ monitor: "val_loss", minDelta: options.minDelta, patience: options.patience });
  const history: { loss: number; val_loss?: number }[] = [];
  let epochStart = performance.now();
  let stopRequested = false;
  let interrupted = false;
  let epochNow = 0;
  let diverged: FitResult["diverged"];
  const best = new BestEpoch(options.minDelta);
  let bestWeights: Tensor[] = [];
  const callbacks = [
    new tf.CustomCallback({
      onEpochBegin: async (epoch) => {
        epochStart = performance.now();
        epochNow = epoch;
      },
      onBatchEnd: async (batch, logs) => {
        options.onBatch?.(batch);
        const loss = Number(logs?.loss);
        if (options.stopOnNonFiniteLoss && logs?.loss !== undefined && !Number.isFinite(loss)) {
          diverged ??= { epoch: epochNow, batch, loss };
          stopRequested = true;
          model.stopTraining = true;
        }
        if (options.shouldStop?.()) {
          stopRequested = true;
          interrupted = true;
          model.stopTraining = true;
        }
      },
      onEpochEnd: async (epoch, logs) => {
        // tfjs ends a stopped epoch as if complete: its loss covers part of the rows, report nothing.
        if (interrupted) return;
        const entry = { loss: Number(logs?.loss), ...(logs?.val_loss !== undefined ? { val_loss: Number(logs.val_loss) } : {}) };
        history.push(entry);
        if (options.restoreBest && entry.val_loss !== undefined && best.keep(entry.val_loss, epoch)) {
          tf.dispose(bestWeights);
          bestWeights = model.getWeights().map((w) => w.clone());
        }
        options.onEpoch?.(epoch, { ...entry, seconds: (performance.now() - epochStart) / 1000 });
      },
    }),
    ...(validation ? [early] : []),
  ];
  await model.fitDataset(train, { epochs: options.epochs, verbose: 0, callbacks, ...(validation ? { validationData: validation } : {}) });
  if (bestWeights.length > 0) {
    model.setWeights(bestWeights);
    tf.dispose(bestWeights);
  }
  return {
    epochsRun: history.length,
    stoppedEarly: !stopRequested && history.length < options.epochs,
    history,
    ...(options.restoreBest && best.epoch >= 0 ? { bestEpoch: best.epoch } : {}),
    ...(diverged ? { diverged } : {}),
  };
}

/** The best epoch as early stopping counts an improvement (tfjs' EarlyStopping, mode min): val_loss + minDelta below the best so far. */
export class BestEpoch {
  value = Number.POSITIVE_INFINITY;
  epoch = -1;
  constructor(private readonly minDelta: number) {}

  /** Whether `loss` at `epoch` improves on the best (it is then the best). */
  keep(loss: number, epoch: number): boolean {
    if (!(loss + this.minDelta < this.value)) return false;
    this.value = loss;
    this.epoch = epoch;
    return true;
  }
}

/** Longest stretch `evaluateMse` predicts before it lets the event loop run (and checks `signal`). */
const YIELD_MS = 50;

/**
 * Mean squared error of the model over `rows`, predicted in large batches, summed in float64.
 * Yields to the event loop every YIELD_MS (predictions on the wasm and cpu backends resolve
 * without one) and stops with `signal`'s abort, so a signal handler is heard during a long pass.
 */
export async function evaluateMse(
  tf: Tf,
  model: LayersModel,
  assembler: FeatureAssembler,
  rows: Int32Array,
  batchSize = 8192,
  signal?: AbortSignal,
): Promise<number> {
  if (rows.length === 0) return Number.NaN;
  const width = assembler.width;
  const x = new Float32Array(batchSize * width);
  const y = new Float32Array(batchSize);
  let sum = 0;
  let sliceStart = performance.now();
  for (let start = 0; start < rows.length; start += batchSize) {
    if (performance.now() - sliceStart >= YIELD_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    if (signal?.aborted) throw signal.reason instanceof MsError ? signal.reason : new InterruptedError("keras: evaluation interrupted");
    const count = Math.min(batchSize, rows.length - start);
    assembler.fill(rows, start, count, x, y);
    const pred = tf.tidy(() => {
      const input = tf.tensor2d(x.subarray(0, count * width), [count, width]);
      return model.predictOnBatch(input) as Tensor;
    });
    const p = (await pred.data()) as Float32Array;
    pred.dispose();
    for (let i = 0; i < count; i++) {
      const d = p[i] - y[i];
      sum += d * d;
    }
  }
  return sum / rows.length;
}

/** Predictions for a row-major feature matrix (`n * inputWidth` floats). */
export async function predictFeatures(tf: Tf, model: LayersModel, features: Float32Array, batchSize = 8192): Promise<Float32Array> {
  const shape = model.inputs[0].shape;
  const width = Number(shape[shape.length - 1]);
  if (!Number.isInteger(width) || width < 1) throw new Error("the model has no fixed input width");
  if (features.length % width !== 0)
    throw new RangeError(`features hold ${features.length} values, not a multiple of the model's input width ${width}`);
  const n = features.length / width;
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const pred = tf.tidy(
      () => model.predictOnBatch(tf.tensor2d(features.subarray(start * width, (start + count) * width), [count, width])) as Tensor,
    );
    out.set((await pred.data()) as Float32Array, start);
    pred.dispose();
  }
  return out;
}
