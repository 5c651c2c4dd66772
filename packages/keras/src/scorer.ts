/**
 * A loaded network as a synchronous pair scorer for serving: the weights are read out of the tfjs
 * model once and packed into one fused-kernel instance (kernel/mlp.c's forward pass, the same
 * arithmetic the fused trainer evaluates with), and each call writes a pair's features straight
 * into the kernel's memory and runs the forward pass there. Scoring one pair is then a few
 * microseconds: no tensors, no promises, no tfjs kernel dispatch (tfjs' `predict` costs a
 * millisecond or more per call, whatever the batch size).
 *
 * Features are the model's own: a stacked network's from the full fit's tables
 * (`stackedPairFeatures` of @ms/fm, the numbers its test rows were scored with), the seed's
 * feature sets from the ALS factors it was trained on (`FeatureAssembler`, as in training).
 */
import { binarySearch } from "@ms/contracts";
import { stackedKnows, stackedPairFeatures, type StackedTables } from "@ms/fm";
import { FeatureAssembler, type FactorMatrices, type FeatureSet } from "./features.js";
import { Kernel, packWeights } from "./fused-kernel.js";
import type { LoadedModel } from "./keras.js";

/** Pairs per forward call: bounds the kernel's input buffer for any number of pairs. */
const SCORER_ROWS = 4096;

export interface PairScorer {
  /** Whether the model can score this user / movie (it has its factors, or its full fit's rows). */
  hasUser(id: number): boolean;
  hasMovie(id: number): boolean;
  /**
   * Predicted ratings of (userIds[i], movieIds[i]) into `out` (as long as the ids), at
   * `timestamps[i]` (seconds) where given: a model with time effects scores a pair without one at
   * the end of its training range ("now"); other models ignore them. Every id must be known
   * (`hasUser`, `hasMovie`); an unknown one throws.
   */
  score(userIds: Int32Array, movieIds: Int32Array, out: Float64Array, timestamps?: Float64Array): void;
}

/** The features of rows [start, start + count) of the pairs (at their timestamps, where the features use time), written at `x` (count * width floats). */
type FeatureWriter = (
  userIds: Int32Array,
  movieIds: Int32Array,
  start: number,
  count: number,
  x: Float32Array,
  timestamps: Float64Array | undefined,
) => void;

function stackedWriter(t: StackedTables): FeatureWriter {
  return (userIds, movieIds, start, count, x, timestamps) => {
    const end = start + count;
    x.set(stackedPairFeatures(t, userIds.subarray(start, end), movieIds.subarray(start, end), timestamps?.subarray(start, end)));
  };
}

function factorsWriter(set: FeatureSet, factors: FactorMatrices): FeatureWriter {
  const userRow = new Int32Array(SCORER_ROWS);
  const movieRow = new Int32Array(SCORER_ROWS);
  const rows = Int32Array.from({ length: SCORER_ROWS }, (_, i) => i);
  const assembler = new FeatureAssembler(set, factors, { userRow, movieRow, ratings: new Float32Array(SCORER_ROWS) });
  return (userIds, movieIds, start, count, x) => {
    for (let i = 0; i < count; i++) {
      userRow[i] = binarySearch(factors.userIds, userIds[start + i]);
      movieRow[i] = binarySearch(factors.itemIds, movieIds[start + i]);
      if (userRow[i] < 0 || movieRow[i] < 0) throw new Error(`pair (${userIds[start + i]}, ${movieIds[start + i]}) has no factors`);
    }
    assembler.fill(rows, 0, count, x, undefined);
  };
}

/**
 * A synchronous scorer of the loaded network (Dense(30) -> Dense(hidden) -> Dense(1), as every ms
 * keras model is). `factors` are the ALS factors the model was trained on; a stacked model needs
 * none (its tables are in `loaded.stacked`).
 */
export function pairScorer(loaded: LoadedModel, factors?: FactorMatrices): PairScorer {
  const weights = loaded.model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
  if (weights.length !== 6 || weights[1].length !== 30 || weights[5].length !== 1)
    throw new Error(`not an ms keras network: ${weights.length} weight tensors`);
  const d = loaded.inputWidth;
  const h = weights[3].length;
  const kernel = new Kernel(d, h, SCORER_ROWS);
  packWeights(weights, d, h, kernel.f32(kernel.w, kernel.np));
  // The kernel's memory never grows after construction, so these views stay valid.
  const x = kernel.f32(kernel.x, SCORER_ROWS * d);
  const y = kernel.f32(kernel.out, SCORER_ROWS);
  let write: FeatureWriter;
  let hasUser: (id: number) => boolean;
  let hasMovie: (id: number) => boolean;
  const stacked = loaded.stacked;
  if (stacked) {
    write = stackedWriter(stacked);
    hasUser = (id) => stackedKnows(stacked, "user", id);
    hasMovie = (id) => stackedKnows(stacked, "movie", id);
  } else {
    if (!factors) throw new Error(`the "${loaded.manifest.details.features}" features need the ALS factors the model was trained on`);
    write = factorsWriter(loaded.manifest.details.features, factors);
    hasUser = (id) => binarySearch(factors.userIds, id) >= 0;
    hasMovie = (id) => binarySearch(factors.itemIds, id) >= 0;
  }
  return {
    hasUser,
    hasMovie,
    score(userIds, movieIds, out, timestamps) {
      const n = userIds.length;
      if (timestamps && timestamps.length !== n) throw new Error(`${timestamps.length} timestamps for ${n} pairs`);
      for (let start = 0; start < n; start += SCORER_ROWS) {
        const count = Math.min(SCORER_ROWS, n - start);
        write(userIds, movieIds, start, count, x, timestamps);
        kernel.k.forward(kernel.x, 0, count, d, h, kernel.w, kernel.out, kernel.scratch);
        for (let i = 0; i < count; i++) out[start + i] = y[i];
      }
    },
  };
}
