/**
 * The fused trainer: the seed's network trained by one hand-written WebAssembly SIMD kernel
 * (kernel/mlp.c: forward, backward and the gradient sums of a chunk of a batch in one call, Adam
 * in another) instead of tfjs' per-op kernels, with every batch assembled straight into the
 * kernel's memory. Same network, initial weights (taken from the tfjs model), shuffles, Adam
 * arithmetic (tfjs-core's), loss, early stopping and stop/divergence rules as `fitNetwork`.
 *
 * Why hand-written: tfjs runs a dozen kernels per layer per batch, each with dispatch, tensor
 * bookkeeping and a pass over memory, which dominates at this network's size (about 8k flops per
 * sample); a fused step does the arithmetic only. Why no library: none trains a small MLP in wasm.
 *
 * Data parallel: every batch is always cut into CHUNKS fixed chunks whose gradients are computed
 * separately and summed in chunk order, so the result is bit-identical whether one thread computes
 * every chunk or a worker thread computes the second (`threads` never changes results). The
 * worker holds its own kernel instance; weights, its chunk and its gradient cross one
 * SharedArrayBuffer, with an Atomics handshake per batch, every wait bounded.
 */
import { InterruptedError, MsError } from "@ms/contracts";
import { Worker } from "node:worker_threads";
import type { FeatureAssembler } from "./features.js";
import { mulberry32, shuffleInPlace } from "./features.js";
import { CHUNKS, Kernel, kernelModule, packWeights, pad4, unpackWeights } from "./fused-kernel.js";
import { BestEpoch, type FitOptions, type FitResult } from "./network.js";

/** Adam's defaults, as Keras and tfjs (`tf.train.adam`) have them. */
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;
/** Longest stretch the training loop runs before it lets the event loop run (signal handlers). */
const YIELD_MS = 50;
/** Longest a thread waits for the other's half of a batch before giving up. */
const WAIT_MS = 60_000;
const EVAL_BATCH = 8192;

// --- The worker replica -------------------------------------------------------------------------

/** Control words (Int32) at the start of the shared buffer. */
const C_GO = 0;
const C_DONE = 1;
const C_STOP = 2;
const C_COUNT = 3;
const C_ERROR = 4;
const CTRL_BYTES = 64;

/**
 * The worker's code, plain JavaScript run with `eval: true` (the same from dist and from sources
 * under vitest, with no bundler helpers inside). It instantiates the kernel module it is sent and
 * answers one chunk per GO: copies the weights and its chunk in, computes the chunk's gradient,
 * copies it out with its squared-error sum, and signals DONE.
 */
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, sab, d, h, np, maxRows, layout } = workerData;
const k = new WebAssembly.Instance(module, {}).exports;
const ctrl = new Int32Array(sab, 0, 16);
const sse = new Float64Array(sab, 64, 1);
const sw = new Float32Array(sab, layout.w, np);
const sx = new Float32Array(sab, layout.x, maxRows * d);
const sy = new Float32Array(sab, layout.y, maxRows);
const sg = new Float32Array(sab, layout.g, np);
const pad = (n) => (n + 3) & ~3;
const p2 = pad(h);
let at = (k.__heap_base.value + 15) & ~15;
const take = (n) => { const o = at; at += pad(n) * 4; return o; };
const W = take(np), G = take(np), S = take(3 * p2 + 32 * p2 + 32), X = take(maxRows * d), Y = take(maxRows);
if (at > k.memory.buffer.byteLength) k.memory.grow(Math.ceil((at - k.memory.buffer.byteLength) / 65536));
const f32 = (o, n) => new Float32Array(k.memory.buffer, o, n);
let seen = 0;
for (;;) {
  if (Atomics.wait(ctrl, ${C_GO}, seen, ${WAIT_MS}) === "timed-out" && Atomics.load(ctrl, ${C_GO}) === seen) {
    if (Atomics.load(ctrl, ${C_STOP}) === 1) break;
    continue;
  }
  if (Atomics.load(ctrl, ${C_STOP}) === 1) break;
  seen = Atomics.load(ctrl, ${C_GO});
  try {
    const n = ctrl[${C_COUNT}];
    const scale = new Float32Array(sab, 72, 1)[0];
    f32(W, np).set(sw);
    f32(X, n * d).set(sx.subarray(0, n * d));
    f32(Y, n).set(sy.subarray(0, n));
    sse[0] = k.grad(X, Y, n, d, h, scale, W, G, S);
    sg.set(f32(G, np));
  } catch (error) {
    Atomics.store(ctrl, ${C_ERROR}, 1);
  }
  Atomics.store(ctrl, ${C_DONE}, seen);
  Atomics.notify(ctrl, ${C_DONE});
}
`;

/** A second replica in a worker thread that computes chunk 1 of every batch. */
class Replica {
  readonly worker: Worker;
  readonly ctrl: Int32Array;
  readonly sse: Float64Array;
  readonly scale: Float32Array;
  readonly w: Float32Array;
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly g: Float32Array;
  private generation = 0;
  private failed: Error | undefined;

  constructor(d: number, h: number, np: number, maxRows: number) {
    const layout = { w: CTRL_BYTES + 16, x: 0, y: 0, g: 0 };
    layout.x = layout.w + pad4(np) * 4;
    layout.y = layout.x + pad4(maxRows * d) * 4;
    layout.g = layout.y + pad4(maxRows) * 4;
    const sab = new SharedArrayBuffer(layout.g + pad4(np) * 4);
    this.ctrl = new Int32Array(sab, 0, 16);
    this.sse = new Float64Array(sab, 64, 1);
    this.scale = new Float32Array(sab, 72, 1);
    this.w = new Float32Array(sab, layout.w, np);
    this.x = new Float32Array(sab, layout.x, maxRows * d);
    this.y = new Float32Array(sab, layout.y, maxRows);
    this.g = new Float32Array(sab, layout.g, np);
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: kernelModule(), sab, d, h, np, maxRows, layout } });
    this.worker.on("error", (error) => (this.failed = error));
    this.worker.unref();
  }

  start(count: number, scale: number): void {
    if (this.failed) throw this.failed;
    this.ctrl[C_COUNT] = count;
    this.scale[0] = scale;
    this.generation++;
    Atomics.store(this.ctrl, C_GO, this.generation);
    Atomics.notify(this.ctrl, C_GO);
  }

  /** Blocks until the worker has answered the current GO; returns its squared-error sum. */
  finish(): number {
    const deadline = performance.now() + WAIT_MS;
    while (Atomics.load(this.ctrl, C_DONE) !== this.generation) {
      if (this.failed) throw this.failed;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`keras: the training worker did not answer within ${WAIT_MS / 1000} s`);
      Atomics.wait(this.ctrl, C_DONE, this.generation - 1, Math.min(left, 1000));
    }
    if (this.ctrl[C_ERROR] !== 0) throw new Error("keras: the training worker failed");
    return this.sse[0];
  }

  async close(): Promise<void> {
    Atomics.store(this.ctrl, C_STOP, 1);
    Atomics.add(this.ctrl, C_GO, 1);
    Atomics.notify(this.ctrl, C_GO);
    await this.worker.terminate();
  }
}

// --- Training -----------------------------------------------------------------------------------

export interface FusedOptions extends FitOptions {
  hiddenUnits: number;
  learningRate: number;
  /** 1 or 2: whether a worker thread computes every batch's second chunk (results are the same). */
  threads: number;
}

export interface FusedNetwork {
  /** The trained weights in tfjs order and shapes (for `model.setWeights`). */
  weights: Float32Array[];
  /** Mean squared error of rows (forward pass only), summed in float64. */
  mse(rows: Int32Array, signal?: AbortSignal): Promise<number>;
}

/**
 * Trains the network from `initial` (the tfjs model's weights) on `fitRows`, validating on
 * `valRows` at the end of every epoch, as `fitNetwork` does with tfjs.
 */
export async function fitFused(
  assembler: FeatureAssembler,
  fitRows: Int32Array,
  valRows: Int32Array,
  initial: Float32Array[],
  options: FusedOptions,
): Promise<FitResult & FusedNetwork> {
  const d = assembler.width;
  const h = options.hiddenUnits;
  const batchSize = options.batchSize;
  const kernel = new Kernel(d, h, Math.max(batchSize, EVAL_BATCH));
  const { np } = kernel;
  packWeights(initial, d, h, kernel.f32(kernel.w, np));
  kernel.f32(kernel.m, np).fill(0);
  kernel.f32(kernel.v, np).fill(0);
  const chunk = Math.ceil(batchSize / CHUNKS);
  const replica = options.threads > 1 && batchSize > 1 ? new Replica(d, h, np, chunk) : undefined;
  // The replica starts from the same weights; after every step it gets the new ones.
  replica?.w.set(kernel.f32(kernel.w, np));
  const order = options.shuffle ? fitRows.slice() : fitRows;
  const history: { loss: number; val_loss?: number }[] = [];
  let diverged: FitResult["diverged"];
  let stopRequested = false;
  const best = new BestEpoch(options.minDelta);
  let bestWeights: Float32Array | undefined;
  let wait = 0;
  let sliceStart = performance.now();
  const trainer: BatchTrainer = {
    kernel,
    replica,
    assembler,
    learningRate: options.learningRate,
    acc1: Math.fround(ADAM.beta1),
    acc2: Math.fround(ADAM.beta2),
  };
  try {
    epochs: for (let epoch = 0; epoch < options.epochs; epoch++) {
      const epochStart = performance.now();
      if (options.shuffle) shuffleInPlace(order, mulberry32((options.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0));
      let sse = 0;
      let batch = 0;
      for (let start = 0; start < order.length; start += batchSize, batch++) {
        const count = Math.min(batchSize, order.length - start);
        const batchSse = trainBatch(trainer, order, start, count);
        sse += batchSse;
        options.onBatch?.(batch);
        const loss = batchSse / count;
        if (options.stopOnNonFiniteLoss && !Number.isFinite(loss)) {
          diverged = { epoch, batch, loss };
          stopRequested = true;
          break epochs;
        }
        if (performance.now() - sliceStart >= YIELD_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
        if (options.shouldStop?.()) {
          // A stopped epoch is not reported (as fitNetwork does).
          stopRequested = true;
          break epochs;
        }
      }
      const entry: { loss: number; val_loss?: number } = { loss: sse / order.length };
      if (valRows.length > 0) entry.val_loss = await meanSquaredError(kernel, assembler, valRows);
      history.push(entry);
      options.onEpoch?.(epoch, { ...entry, seconds: (performance.now() - epochStart) / 1000 });
      sliceStart = performance.now();
      if (entry.val_loss !== undefined) {
        if (best.keep(entry.val_loss, epoch)) {
          wait = 0;
          if (options.restoreBest) bestWeights = kernel.f32(kernel.w, np).slice();
        } else if (++wait >= options.patience) break;
      }
    }
  } finally {
    await replica?.close();
  }
  if (bestWeights) kernel.f32(kernel.w, np).set(bestWeights);
  const weights = unpackWeights(kernel.f32(kernel.w, np), d, h);
  return {
    epochsRun: history.length,
    stoppedEarly: !stopRequested && history.length < options.epochs,
    history,
    ...(options.restoreBest && best.epoch >= 0 ? { bestEpoch: best.epoch } : {}),
    ...(diverged ? { diverged } : {}),
    weights,
    mse: (rows, signal) => meanSquaredError(kernel, assembler, rows, signal),
  };
}

/** What one training step needs, and Adam's running beta powers. */
interface BatchTrainer {
  kernel: Kernel;
  replica: Replica | undefined;
  assembler: FeatureAssembler;
  learningRate: number;
  /** tfjs keeps beta^t as float32 variables multiplied once per step: so does this. */
  acc1: number;
  acc2: number;
}

/** One Adam step on `order[start, start + count)`, its gradient summed over CHUNKS chunks in order; returns the batch's squared error. */
function trainBatch(t: BatchTrainer, order: Int32Array, start: number, count: number): number {
  const { kernel, replica, assembler } = t;
  const { k, d, h, np } = kernel;
  const half = Math.ceil(count / CHUNKS);
  const scale = 2 / count;
  const x = kernel.f32(kernel.x, count * d);
  const y = kernel.f32(kernel.y, count);
  let batchSse = 0;
  if (replica && count > half) {
    // Chunk 1 goes to the worker; chunk 0 is assembled into this thread's kernel memory.
    assembler.fill(order, start + half, count - half, replica.x, replica.y);
    replica.start(count - half, scale);
    assembler.fill(order, start, half, x, y);
    batchSse = k.grad(kernel.x, kernel.y, half, d, h, scale, kernel.w, kernel.g[0], kernel.scratch);
    batchSse += replica.finish();
    kernel.f32(kernel.g[1], np).set(replica.g);
  } else {
    assembler.fill(order, start, count, x, y);
    batchSse = k.grad(kernel.x, kernel.y, half, d, h, scale, kernel.w, kernel.g[0], kernel.scratch);
    batchSse += k.grad(kernel.x + half * d * 4, kernel.y + half * 4, count - half, d, h, scale, kernel.w, kernel.g[1], kernel.scratch);
  }
  k.add_into(kernel.g[0], kernel.g[1], np);
  const { beta1, beta2, epsilon } = ADAM;
  k.adam(kernel.w, kernel.g[0], kernel.m, kernel.v, np, t.learningRate, beta1, beta2, epsilon, 1 - t.acc1, 1 - t.acc2);
  t.acc1 = Math.fround(t.acc1 * Math.fround(beta1));
  t.acc2 = Math.fround(t.acc2 * Math.fround(beta2));
  if (replica) replica.w.set(kernel.f32(kernel.w, np));
  return batchSse;
}

/** Mean squared error over rows with the kernel's current weights, predicted EVAL_BATCH at a time. */
async function meanSquaredError(kernel: Kernel, assembler: FeatureAssembler, rows: Int32Array, signal?: AbortSignal): Promise<number> {
  if (rows.length === 0) return Number.NaN;
  const { d, h } = kernel;
  let sum = 0;
  let sliceStart = performance.now();
  for (let start = 0; start < rows.length; start += EVAL_BATCH) {
    if (performance.now() - sliceStart >= YIELD_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    if (signal?.aborted) throw signal.reason instanceof MsError ? signal.reason : new InterruptedError("keras: evaluation interrupted");
    const count = Math.min(EVAL_BATCH, rows.length - start);
    assembler.fill(rows, start, count, kernel.f32(kernel.x, count * d), kernel.f32(kernel.y, count));
    sum += kernel.k.forward(kernel.x, kernel.y, count, d, h, kernel.w, kernel.out, kernel.scratch);
  }
  return sum / rows.length;
}

/** Predictions of a row-major feature matrix with the given tfjs-order weights (tests and tools). */
export function predictFused(weights: Float32Array[], d: number, h: number, features: Float32Array): Float32Array {
  const n = features.length / d;
  const kernel = new Kernel(d, h, EVAL_BATCH);
  packWeights(weights, d, h, kernel.f32(kernel.w, kernel.np));
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += EVAL_BATCH) {
    const count = Math.min(EVAL_BATCH, n - start);
    kernel.f32(kernel.x, count * d).set(features.subarray(start * d, (start + count) * d));
    kernel.k.forward(kernel.x, 0, count, d, h, kernel.w, kernel.out, kernel.scratch);
    out.set(kernel.f32(kernel.out, count), start);
  }
  return out;
}

/**
 * Threads for a batch size. One by default: measured on the shared 2-core machine, the worker made
 * every batch size slower (0.5-0.8x at 128 to 8192, tools/bench/keras), since a batch waits for
 * whichever thread the scheduler delays. MS_KERAS_THREADS=2 turns it on; results do not change.
 */
export function fusedThreads(batchSize: number): number {
  const forced = Number(process.env.MS_KERAS_THREADS);
  if (Number.isInteger(forced) && forced >= 1) return batchSize > 1 ? Math.min(forced, 2) : 1;
  return 1;
}
