/**
 * Out-of-fold features for stacking: every rating gets features computed by a model that never
 * saw that rating. The training part is cut into `folds` by the split's own hash; the model is
 * fitted once per fold without it and scores that fold's rows, and once on the whole training
 * part, which scores the test rows (and would serve). A network trained on these features learns
 * how ratings relate to honest predictions, which is what it meets on test rows.
 */
import { BadParameterError, splitHash, type SplitSpec } from "@ms/contracts";
import { gibbsFit, type GibbsData, type GibbsFit } from "./bayes.js";

/** The feature columns, in order. */
export const OOF_COLUMNS = ["bayes_prediction", "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"] as const;

export interface OofOptions {
  /** Folds of the training part (>= 2). */
  folds: number;
  rank: number;
  samples: number;
  burnIn: number;
  seed: number;
  signal?: AbortSignal;
  /** Called after each fit (fold index, or `folds` for the full fit). */
  onFit?: (fit: number, seconds: number) => void;
}

export interface OofRatings {
  rows: number;
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
}

export interface OofFeatures {
  columns: readonly string[];
  width: number;
  /** `rows * width` values, one row per input rating, in input order. */
  values: Float32Array;
  /** 1 for training rows (out-of-fold values), 0 for test rows (values from the full fit). */
  trainMask: Uint8Array;
  seconds: number;
}

export const OOF_LIMITS = { folds: 20, rank: 256, samples: 10_000 } as const;

export function checkOofOptions(o: Pick<OofOptions, "folds" | "rank" | "samples" | "burnIn">, names: Record<"folds" | "rank" | "samples" | "burnIn", string>): void {
  const L = OOF_LIMITS;
  if (!Number.isInteger(o.folds) || o.folds < 2 || o.folds > L.folds) throw new BadParameterError(names.folds, `must be an integer in [2, ${L.folds}], got ${o.folds}`);
  if (!Number.isInteger(o.rank) || o.rank < 1 || o.rank > L.rank) throw new BadParameterError(names.rank, `must be an integer in [1, ${L.rank}], got ${o.rank}`);
  if (!Number.isInteger(o.samples) || o.samples < 1 || o.samples > L.samples) throw new BadParameterError(names.samples, `must be an integer in [1, ${L.samples}], got ${o.samples}`);
  if (!Number.isInteger(o.burnIn) || o.burnIn < 0 || o.burnIn >= o.samples) throw new BadParameterError(names.burnIn, `must be an integer in [0, samples - 1 = ${o.samples - 1}], got ${o.burnIn}`);
}

function denseIndex(ids: Int32Array): { idx: Int32Array; n: number } {
  const sorted = Int32Array.from(new Set(ids)).sort();
  const map = new Map<number, number>();
  for (let i = 0; i < sorted.length; i++) map.set(sorted[i], i);
  const idx = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) idx[i] = map.get(ids[i]) as number;
  return { idx, n: sorted.length };
}

/** Writes the features of `rows` (scored by `fit`, whose predictions follow `rows`' order) into `out`. */
function writeRows(fit: GibbsFit, data: GibbsData, rank: number, rows: Int32Array, out: Float32Array, width: number): void {
  const K = rank + 1;
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k];
    const u = data.userIdx[i];
    const m = data.itemIdx[i];
    const o = i * width;
    out[o] = fit.predictions[k];
    out[o + 1] = fit.userMean[u * K];
    out[o + 2] = fit.itemMean[m * K];
    out[o + 3] = Math.log1p(fit.userCount[u]);
    out[o + 4] = Math.log1p(fit.itemCount[m]);
  }
}

/** Fills column 5: the user's implicit vector (mean movie factor over the fit's training rows) dotted with the movie's factor. */
function writeImplicit(fit: GibbsFit, data: GibbsData, rank: number, trainRows: Int32Array, rows: Int32Array, out: Float32Array, width: number): void {
  const K = rank + 1;
  const y = new Float64Array(data.nUsers * rank);
  for (let k = 0; k < trainRows.length; k++) {
    const i = trainRows[k];
    const uo = data.userIdx[i] * rank;
    const mo = data.itemIdx[i] * K + 1;
    for (let f = 0; f < rank; f++) y[uo + f] += fit.itemMean[mo + f];
  }
  for (let u = 0; u < data.nUsers; u++) {
    const c = fit.userCount[u];
    if (c === 0) continue;
    const s = 1 / Math.sqrt(c);
    for (let f = 0; f < rank; f++) y[u * rank + f] *= s;
  }
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k];
    const uo = data.userIdx[i] * rank;
    const mo = data.itemIdx[i] * K + 1;
    let s = 0;
    for (let f = 0; f < rank; f++) s += y[uo + f] * fit.itemMean[mo + f];
    out[i * width + 5] = s;
  }
}

/**
 * Out-of-fold features of every rating: training rows from the fold fit that left them out, test
 * rows from the fit on the whole training part. Deterministic for `seed`.
 */
export async function outOfFoldFeatures(ratings: OofRatings, split: SplitSpec, options: OofOptions): Promise<OofFeatures> {
  const started = performance.now();
  const n = ratings.rows;
  const users = denseIndex(ratings.userIds);
  const items = denseIndex(ratings.movieIds);
  const data: GibbsData = { userIdx: users.idx, itemIdx: items.idx, ratings: ratings.ratings, nUsers: users.n, nItems: items.n };
  const k = options.folds;
  // The fold of a training row comes from the same hash as the split: h < splitProp is training,
  // so h / splitProp is uniform on [0, 1) over the training part.
  const fold = new Int8Array(n);
  const trainMask = new Uint8Array(n);
  const foldSizes = new Int32Array(k);
  let nTrain = 0;
  for (let i = 0; i < n; i++) {
    const h = splitHash(ratings.userIds[i], ratings.movieIds[i], split.seed);
    if (h < split.splitProp) {
      trainMask[i] = 1;
      nTrain++;
      const f = Math.min(k - 1, Math.floor((h / split.splitProp) * k));
      fold[i] = f;
      foldSizes[f]++;
    } else fold[i] = -1;
  }
  const width = OOF_COLUMNS.length;
  const values = new Float32Array(n * width);
  const allTrain = new Int32Array(nTrain);
  const test = new Int32Array(n - nTrain);
  for (let i = 0, a = 0, b = 0; i < n; i++) {
    if (trainMask[i] === 1) allTrain[a++] = i;
    else test[b++] = i;
  }
  const gibbs = { rank: options.rank, samples: options.samples, burnIn: options.burnIn, signal: options.signal };
  for (let f = 0; f <= k; f++) {
    const fitStarted = performance.now();
    let trainRows: Int32Array;
    let queryRows: Int32Array;
    if (f < k) {
      trainRows = new Int32Array(nTrain - foldSizes[f]);
      queryRows = new Int32Array(foldSizes[f]);
      for (let j = 0, a = 0, b = 0; j < nTrain; j++) {
        const i = allTrain[j];
        if (fold[i] === f) queryRows[b++] = i;
        else trainRows[a++] = i;
      }
    } else {
      trainRows = allTrain;
      queryRows = test;
    }
    const fit = await gibbsFit(data, trainRows, queryRows, { ...gibbs, seed: options.seed + f });
    writeRows(fit, data, options.rank, queryRows, values, width);
    writeImplicit(fit, data, options.rank, trainRows, queryRows, values, width);
    options.onFit?.(f, (performance.now() - fitStarted) / 1000);
  }
  return { columns: OOF_COLUMNS, width, values, trainMask, seconds: (performance.now() - started) / 1000 };
}
