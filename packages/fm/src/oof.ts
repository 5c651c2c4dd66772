/**
 * Out-of-fold features for stacking: every rating gets features computed by a model that never
 * saw that rating. The training part is cut into `folds` by the split's own hash; the model is
 * fitted once per fold without it and scores that fold's rows; the model fitted on the whole
 * training part scores the test rows and serves new pairs. A network trained on these features
 * learns how ratings relate to honest predictions, which is what it meets on test rows.
 *
 * Two models: `bayes` (Gibbs-sampled factor model with biases, the stronger one; one thread, so
 * its cost grows fastest) and `als` (the als step's ALS-WR on the worker threads, with regularised
 * mean biases beside it; the full fit is the als step's own factors). `auto` takes bayes up to
 * AUTO_BAYES_MAX_TRAIN training ratings and als above, where the posterior is narrow enough that
 * sampling gains little and its sweeps would cost many times the als step.
 *
 * Whatever the model, the full fit is kept as `StackedTables` (per user and per movie: bias, log
 * count, factor, and for users the implicit vector), from which the features of any known pair
 * follow (`stackedPairFeatures`): test rows and served pairs get exactly the same numbers. For
 * bayes that prediction is the product of the posterior means (the fold fits' own rows keep the
 * average over samples); on ml-latest-small this costs 0.0007 test RMSE against averaging every
 * pair over the samples, which would need every sample kept to serve.
 */
import { BadParameterError, binarySearch, splitHash, splitMaskOf, type SplitSpec } from "@ms/contracts";
import { fitOptions, gibbsFit, type GibbsFeatures, type GibbsFit } from "./bayes.js";
import { timeTablesOn } from "./timebias.js";
import { counts, denseIndex, gibbsData, type Dense } from "./dense.js";
import { alsFit, type AlsFitSettings } from "./als-fit.js";
import { bayesFits } from "./parallel.js";
import { selectGroups, type GroupTrial, type SelectableGroup } from "./select.js";
import { oofColumns, writePair, type StackedTables } from "./stacked.js";

export const OOF_MODELS = ["auto", "bayes", "als"] as const;
export type OofModel = (typeof OOF_MODELS)[number];

/** `auto` samples the Bayesian model up to this many training ratings, and fits ALS above. */
export const AUTO_BAYES_MAX_TRAIN = 2_000_000;

/** Shrinkage of the als model's regularised-mean biases (ratings' worth of prior at the global mean), as in Koren's baseline. */
const BIAS_SHRINK = { movie: 25, user: 10 } as const;

export interface OofOptions {
  /** Which model the fits use; `auto` by training size (see AUTO_BAYES_MAX_TRAIN). Default bayes. */
  model?: OofModel;
  /** Folds of the training part (>= 2). */
  folds: number;
  /** The bayes model's rank, sweeps and burn-in. */
  rank: number;
  samples: number;
  burnIn: number;
  seed: number;
  /** The Bayesian model's feature groups (the fm step's fm_implicit_user, fm_implicit_movie, fm_time, fm_output=ordinal); default none. */
  features?: GibbsFeatures;
  /** Groups the held-out error decides (the fm step's `auto`): see `selectGroups`. */
  select?: readonly SelectableGroup[];
  /** With a cap, the sample count is the data's: see `fitOptions`. Absent: every fit runs `samples` sweeps. */
  maxSamples?: number;
  /** The full fit's count from the folds' (see `fitOptions`); "first" lets it run beside the other folds. */
  fullSamples?: "max" | "mean" | "first";
  /** Bayes fold fits run side by side in this many worker threads (default 1: one after another). */
  threads?: number;
  /** The als model: its fit settings (the als step's), its threads, and the full fit (the als step's factors). */
  als?: AlsFitSettings & { full?: FactorSet };
  signal?: AbortSignal;
  /** Called after each fit (fold index, or `folds` for the full fit) with its seconds and the Gibbs sweeps it took (0 for als). */
  onFit?: (fit: number, seconds: number, samples: number) => void;
}

/** Factors with their sorted ids (the factors artifact's tables). */
export interface FactorSet {
  rank: number;
  userIds: Int32Array;
  userFactors: Float32Array;
  itemIds: Int32Array;
  itemFactors: Float32Array;
}

export interface OofRatings {
  rows: number;
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
  /** etl's split_key, for a keyed evaluation split (time, file). */
  splitKey?: Float32Array;
  /** Seconds since the epoch (needed by the bayes model's time features only). */
  timestamps?: ArrayLike<number>;
}

export interface OofFeatures {
  model: "bayes" | "als";
  /** The groups the fits used (what `select` chose, plus those forced on). */
  features: GibbsFeatures;
  /** The selection's trials, in `select` order (empty without one). */
  trials: GroupTrial[];
  columns: readonly string[];
  width: number;
  /** `rows * width` values, one row per input rating, in input order. */
  values: Float32Array;
  /** 1 for training rows (out-of-fold values), 0 for test rows (values from the full fit). */
  trainMask: Uint8Array;
  /** The full fit, for scoring new pairs the same way as the test rows. */
  tables: StackedTables;
  /** Gibbs sweeps each fit took (folds, then the full fit); empty for als fits. */
  samplesUsed: number[];
  seconds: number;
}

export const OOF_LIMITS = { folds: 20, rank: 256, samples: 10_000 } as const;

export function checkOofOptions(
  o: Pick<OofOptions, "folds" | "rank" | "samples" | "burnIn">,
  names: Record<"folds" | "rank" | "samples" | "burnIn", string>,
): void {
  const L = OOF_LIMITS;
  if (!Number.isInteger(o.folds) || o.folds < 2 || o.folds > L.folds)
    throw new BadParameterError(names.folds, `must be an integer in [2, ${L.folds}], got ${o.folds}`);
  if (!Number.isInteger(o.rank) || o.rank < 1 || o.rank > L.rank)
    throw new BadParameterError(names.rank, `must be an integer in [1, ${L.rank}], got ${o.rank}`);
  if (!Number.isInteger(o.samples) || o.samples < 1 || o.samples > L.samples)
    throw new BadParameterError(names.samples, `must be an integer in [1, ${L.samples}], got ${o.samples}`);
  if (!Number.isInteger(o.burnIn) || o.burnIn < 0 || o.burnIn >= o.samples)
    throw new BadParameterError(names.burnIn, `must be an integer in [0, samples - 1 = ${o.samples - 1}], got ${o.burnIn}`);
}

/** The model `auto` stands for, given the number of training ratings. */
export function resolveOofModel(model: OofModel | undefined, trainRows: number): "bayes" | "als" {
  if (model === "als" || model === "bayes") return model;
  if (model === undefined) return "bayes";
  return trainRows <= AUTO_BAYES_MAX_TRAIN ? "bayes" : "als";
}

/** The implicit vectors: sum of the rated movies' factors over `rows`, times 1/sqrt(count). */
function implicitVectors(d: Dense, rows: Int32Array, itemFactors: Float32Array, rank: number, userCount: Int32Array): Float32Array {
  const y = new Float64Array(d.users.length * rank);
  for (let k = 0; k < rows.length; k++) {
    const uo = d.userIdx[rows[k]] * rank;
    const mo = d.itemIdx[rows[k]] * rank;
    for (let f = 0; f < rank; f++) y[uo + f] += itemFactors[mo + f];
  }
  for (let u = 0; u < d.users.length; u++) {
    const c = userCount[u];
    const s = c > 0 ? 1 / Math.sqrt(c) : 0;
    for (let f = 0; f < rank; f++) y[u * rank + f] *= s;
  }
  return Float32Array.from(y);
}

function logCounts(c: Int32Array): Float32Array {
  const out = new Float32Array(c.length);
  for (let i = 0; i < c.length; i++) out[i] = Math.log1p(c[i]);
  return out;
}

/** Tables from a Gibbs fit: posterior means of [bias, factors] per row (K = rank + 1 values). */
function tablesFromGibbs(d: Dense, fit: GibbsFit, rank: number, rows: Int32Array): StackedTables {
  const K = rank + 1;
  const split = (mean: Float64Array, n: number) => {
    const bias = new Float32Array(n);
    const factors = new Float32Array(n * rank);
    for (let r = 0; r < n; r++) {
      bias[r] = mean[r * K];
      for (let f = 0; f < rank; f++) factors[r * rank + f] = mean[r * K + 1 + f];
    }
    return { bias, factors };
  };
  const users = split(fit.userMean, d.users.length);
  const items = split(fit.itemMean, d.items.length);
  return {
    model: "bayes",
    rank,
    mu: fit.mu,
    withBiases: true,
    userIds: d.users,
    itemIds: d.items,
    userBias: users.bias,
    itemBias: items.bias,
    userLogCount: logCounts(fit.userCount),
    itemLogCount: logCounts(fit.itemCount),
    userFactors: users.factors,
    itemFactors: items.factors,
    userImplicit: implicitVectors(d, rows, items.factors, rank, fit.userCount),
    ...(fit.time ? { time: fit.time } : {}),
    ...(fit.ordinal ? { ordinal: fit.ordinal } : {}),
  };
}

/**
 * Regularised-mean biases over `rows`: b_m = sum(r - mu) / (25 + n_m), then
 * b_u = sum(r - mu - b_m) / (10 + n_u).
 */
function shrunkBiases(
  d: Dense,
  ratings: Float32Array,
  rows: Int32Array,
  c: { user: Int32Array; item: Int32Array },
): { mu: number; user: Float32Array; item: Float32Array } {
  let mu = 0;
  for (let k = 0; k < rows.length; k++) mu += ratings[rows[k]];
  mu = rows.length > 0 ? mu / rows.length : 0;
  const item = new Float64Array(d.items.length);
  for (let k = 0; k < rows.length; k++) item[d.itemIdx[rows[k]]] += ratings[rows[k]] - mu;
  for (let m = 0; m < item.length; m++) item[m] /= BIAS_SHRINK.movie + c.item[m];
  const user = new Float64Array(d.users.length);
  for (let k = 0; k < rows.length; k++) user[d.userIdx[rows[k]]] += ratings[rows[k]] - mu - item[d.itemIdx[rows[k]]];
  for (let u = 0; u < user.length; u++) user[u] /= BIAS_SHRINK.user + c.user[u];
  return { mu, user: Float32Array.from(user), item: Float32Array.from(item) };
}

/** Factors laid out on the dense numbering (zeros for ids the fit has no factor for), and whether each row has one. */
function onDense(ids: Int32Array, factors: Float32Array, dense: Int32Array, rank: number): { factors: Float32Array; known: Uint8Array } {
  const out = new Float32Array(dense.length * rank);
  const known = new Uint8Array(dense.length);
  for (let r = 0; r < dense.length; r++) {
    const at = binarySearch(ids, dense[r]);
    if (at < 0) continue;
    known[r] = 1;
    out.set(factors.subarray(at * rank, at * rank + rank), r * rank);
  }
  return { factors: out, known };
}

/** Tables for the als model: the fit's factors plus regularised-mean biases and counts over `rows`. */
function tablesFromAls(
  d: Dense,
  ratings: Float32Array,
  rows: Int32Array,
  fit: FactorSet,
): { tables: StackedTables; userKnown: Uint8Array; itemKnown: Uint8Array } {
  const c = counts(d, rows);
  const b = shrunkBiases(d, ratings, rows, c);
  const users = onDense(fit.userIds, fit.userFactors, d.users, fit.rank);
  const items = onDense(fit.itemIds, fit.itemFactors, d.items, fit.rank);
  const tables: StackedTables = {
    model: "als",
    rank: fit.rank,
    mu: b.mu,
    withBiases: false,
    userIds: d.users,
    itemIds: d.items,
    userBias: b.user,
    itemBias: b.item,
    userLogCount: logCounts(c.user),
    itemLogCount: logCounts(c.item),
    userFactors: users.factors,
    itemFactors: items.factors,
    userImplicit: implicitVectors(d, rows, items.factors, fit.rank, c.user),
  };
  return { tables, userKnown: users.known, itemKnown: items.known };
}

/** Keeps only the ids with training ratings (count > 0): what a served pair may name. */
function trainedOnly(t: StackedTables): StackedTables {
  const keep = (logCount: Float32Array) => {
    const idx: number[] = [];
    for (let i = 0; i < logCount.length; i++) if (logCount[i] > 0) idx.push(i);
    return idx;
  };
  const pick = (a: Float32Array, idx: number[], w: number) => {
    const out = new Float32Array(idx.length * w);
    idx.forEach((r, k) => out.set(a.subarray(r * w, r * w + w), k * w));
    return out;
  };
  const u = keep(t.userLogCount);
  const m = keep(t.itemLogCount);
  const r = t.rank;
  return {
    ...t,
    userIds: Int32Array.from(u, (i) => t.userIds[i]),
    itemIds: Int32Array.from(m, (i) => t.itemIds[i]),
    userBias: pick(t.userBias, u, 1),
    itemBias: pick(t.itemBias, m, 1),
    userLogCount: pick(t.userLogCount, u, 1),
    itemLogCount: pick(t.itemLogCount, m, 1),
    userFactors: pick(t.userFactors, u, r),
    itemFactors: pick(t.itemFactors, m, r),
    userImplicit: pick(t.userImplicit, u, r),
    ...(t.time ? { time: timeTablesOn(t.time, u, m) } : {}),
  };
}

/**
 * The evaluation split's training rows, and each one's fold (-1 for test rows). With the hash
 * split, a training row's fold comes from the same hash: h < splitProp is training, so
 * h / splitProp is uniform on [0, 1) over the training part. Other evaluation splits pick the
 * training rows otherwise, so their folds come from a hash of another seed.
 */
function assignFolds(ratings: OofRatings, split: SplitSpec, k: number) {
  const n = ratings.rows;
  const hashSplit = (split.kind ?? "hash") === "hash";
  const fold = new Int8Array(n);
  const trainMask = splitMaskOf(split, ratings);
  const foldSizes = new Int32Array(k);
  let nTrain = 0;
  for (let i = 0; i < n; i++) {
    if (trainMask[i] === 1) {
      nTrain++;
      const f = hashSplit
        ? Math.min(k - 1, Math.floor((splitHash(ratings.userIds[i], ratings.movieIds[i], split.seed) / split.splitProp) * k))
        : Math.min(k - 1, Math.floor(splitHash(ratings.userIds[i], ratings.movieIds[i], split.seed + 1) * k));
      fold[i] = f;
      foldSizes[f]++;
    } else fold[i] = -1;
  }
  return { fold, trainMask, foldSizes, nTrain };
}

/** Fold `f`'s rows: the training rows of the other folds fit, its own are queried. */
function foldRows(allTrain: Int32Array, fold: Int8Array, f: number, size: number) {
  const trainRows = new Int32Array(allTrain.length - size);
  const queryRows = new Int32Array(size);
  for (let j = 0, a = 0, b = 0; j < allTrain.length; j++) {
    const i = allTrain[j];
    if (fold[i] === f) queryRows[b++] = i;
    else trainRows[a++] = i;
  }
  return { trainRows, queryRows };
}

/**
 * Out-of-fold features of every rating: training rows from the fold fit that left them out, test
 * rows from the fit on the whole training part. Deterministic for `seed`.
 */
export async function outOfFoldFeatures(ratings: OofRatings, split: SplitSpec, options: OofOptions): Promise<OofFeatures> {
  const started = performance.now();
  const n = ratings.rows;
  const d = denseIndex(ratings);
  const k = options.folds;
  const { fold, trainMask, foldSizes, nTrain } = assignFolds(ratings, split, k);
  const model = resolveOofModel(options.model, nTrain);
  if (model === "als" && !options.als) throw new BadParameterError("oof_model", "the als model needs the ALS settings (options.als)");
  const width = 6;
  const values = new Float32Array(n * width);
  const allTrain = new Int32Array(nTrain);
  const test = new Int32Array(n - nTrain);
  for (let i = 0, a = 0, b = 0; i < n; i++) {
    if (trainMask[i] === 1) allTrain[a++] = i;
    else test[b++] = i;
  }
  const data = gibbsData(d, ratings);
  const samplesUsed: number[] = [];
  let full: StackedTables | undefined;
  const rowsOf = (f: number) => (f < k ? foldRows(allTrain, fold, f, foldSizes[f]) : { trainRows: allTrain, queryRows: test });
  const selection =
    model === "bayes" && options.select?.length
      ? await selectGroups(data, rowsOf(0), options, options.select)
      : { features: options.features ?? {}, trials: [], fold0: undefined };
  const chosen = { ...options, features: selection.features };
  if (selection.fold0) options.onFit?.(0, selection.fold0.seconds, selection.fold0.fit.samplesUsed);
  const foldFits = model === "bayes" ? await bayesFits(data, k, rowsOf, chosen, selection.fold0?.fit) : [];
  const fullInPool = foldFits[k] !== undefined;
  for (let f = 0; f <= k; f++) {
    const fitStarted = performance.now();
    const { trainRows, queryRows } = rowsOf(f);
    let tables: StackedTables;
    if (model === "bayes") {
      const fit = foldFits[f] ?? (await gibbsFit(data, trainRows, queryRows, fitOptions(chosen, data, undefined, f, samplesUsed)));
      samplesUsed.push(fit.samplesUsed);
      tables = tablesFromGibbs(d, fit, options.rank, trainRows);
      for (let q = 0; q < queryRows.length; q++) {
        const i = queryRows[q];
        writePair(tables, d.userIdx[i], d.itemIdx[i], ratings.timestamps?.[i], values, i * width);
        // A fold's own rows keep the average over samples; the full fit's rows and served pairs use the tables.
        if (f < k) values[i * width] = fit.predictions[q];
      }
    } else {
      const als = options.als as NonNullable<OofOptions["als"]>;
      const factors = f === k && als.full ? als.full : await alsFit(ratings, trainRows, als, options.seed + f, options.signal);
      const fitted = tablesFromAls(d, ratings.ratings, trainRows, factors);
      tables = fitted.tables;
      for (let q = 0; q < queryRows.length; q++) {
        const i = queryRows[q];
        const u = d.userIdx[i];
        const m = d.itemIdx[i];
        writePair(tables, u, m, undefined, values, i * width);
        // A user or movie with no rating in this fit's part has no factor: its prediction is the baseline.
        if (fitted.userKnown[u] === 0 || fitted.itemKnown[m] === 0) values[i * width] = tables.mu + tables.userBias[u] + tables.itemBias[m];
      }
    }
    if (f === k) full = tables;
    if (model !== "bayes" || (f === k && !fullInPool))
      options.onFit?.(f, (performance.now() - fitStarted) / 1000, model === "bayes" ? samplesUsed[samplesUsed.length - 1] : 0);
  }
  return {
    model,
    features: model === "bayes" ? selection.features : {},
    trials: selection.trials,
    columns: oofColumns(model),
    width,
    values,
    trainMask,
    tables: trainedOnly(full as StackedTables),
    samplesUsed,
    seconds: (performance.now() - started) / 1000,
  };
}
