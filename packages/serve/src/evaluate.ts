/**
 * The test-set figures of a run's report: the RMSE of every model of the run on the test rows of
 * the shared split, beside two simple baselines fitted on the training rows (the global mean, and
 * the mean plus damped movie and user biases), and each model's error histogram; each row is scored
 * at its timestamp, as the steps scored it (what a model with time effects needs). Computed once per
 * set of entries and kept as a memo file, so a fully cached run reports without loading DuckDB or
 * TensorFlow.js again. The memo's directory is given by the caller (the driver passes the cache
 * layout's meta place).
 */
import path from "node:path";
import * as v from "valibot";
import {
  binarySearch,
  canonicalJson,
  checkJson,
  sha256Hex,
  splitMaskOf,
  SplitSpecSchema,
  type Logger,
  type SplitSpec,
} from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { modelDirs, type RunEntry } from "./locate.js";
import { readMemo, writeMemo } from "./memo.js";
import { openModel, UnservableModelError, type ModelKind, type ServedModel } from "./serve.js";

/** Error histogram bins: prediction minus actual rating, in [-ERR_RANGE, ERR_RANGE], width ERR_STEP. */
const ERR_RANGE = 4.5;
const ERR_STEP = 0.25;
/** Damping of the bias baseline (Koren's usual values): movie biases, then user biases. */
const MOVIE_DAMPING = 25;
const USER_DAMPING = 10;
/** 2: test rows are scored at their timestamps (a model with time effects scored every row at "now" before). */
const MEMO_VERSION = 2;

const ModelScoreSchema = v.object({ model: v.string(), rmse: v.number(), rows: v.number() });
const ErrorHistogramSchema = v.object({
  model: v.string(),
  bins: v.array(v.object({ from: v.number(), to: v.number(), count: v.number() })),
});
/** An evaluation as its memo file holds it. */
export const EvaluationSchema = v.object({
  testRows: v.number(),
  scores: v.array(ModelScoreSchema),
  histograms: v.array(ErrorHistogramSchema),
});

export type ModelScore = v.InferOutput<typeof ModelScoreSchema>;
/** Prediction minus actual rating, binned: lower edges `from`, each bin ERR_STEP wide; errors outside the range fall in the outer bins. */
export type ErrorHistogram = v.InferOutput<typeof ErrorHistogramSchema>;
export type Evaluation = v.InferOutput<typeof EvaluationSchema>;

function histogram(model: string, pred: Float64Array, actual: Float32Array): ErrorHistogram {
  const n = Math.round((2 * ERR_RANGE) / ERR_STEP);
  const counts = new Float64Array(n);
  for (let i = 0; i < pred.length; i++) {
    const b = Math.floor((pred[i] - actual[i] + ERR_RANGE) / ERR_STEP);
    counts[b < 0 ? 0 : b >= n ? n - 1 : b]++;
  }
  return {
    model,
    bins: Array.from(counts, (count, b) => ({ from: -ERR_RANGE + b * ERR_STEP, to: -ERR_RANGE + (b + 1) * ERR_STEP, count })),
  };
}

function rmse(pred: Float64Array, actual: Float32Array): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i] - actual[i];
    s += d * d;
  }
  return Math.sqrt(s / pred.length);
}

/**
 * The baselines on the test rows: global mean and damped biases, fitted on the training rows.
 * `userRow`/`movieRow` are each rating's index among the factors' ids (-1: none), so the sums
 * live in typed arrays rather than maps. Every training movie and user has factors, so the
 * biases are those of all its training ratings.
 *
 *   mu = mean of training ratings;  b_i = sum_{u in R(i)} (r_ui - mu) / (25 + |R(i)|)
 *   b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (10 + |R(u)|);  prediction clamp(mu + b_i + b_u, 0.5, 5)
 */
function baselines(
  userRow: Int32Array,
  movieRow: Int32Array,
  users: number,
  movies: number,
  ratings: Float32Array,
  mask: Uint8Array,
  test: Int32Array,
): { mean: Float64Array; biases: Float64Array } {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < ratings.length; i++) {
    if (mask[i] !== 1) continue;
    sum += ratings[i];
    count++;
  }
  const mu = count ? sum / count : 0;
  const bi = new Float64Array(movies);
  const ni = new Float64Array(movies);
  for (let i = 0; i < ratings.length; i++) {
    const m = movieRow[i];
    if (mask[i] !== 1 || m < 0) continue;
    bi[m] += ratings[i] - mu;
    ni[m]++;
  }
  for (let m = 0; m < movies; m++) bi[m] /= MOVIE_DAMPING + ni[m];
  const bu = new Float64Array(users);
  const nu = new Float64Array(users);
  for (let i = 0; i < ratings.length; i++) {
    const u = userRow[i];
    if (mask[i] !== 1 || u < 0) continue;
    bu[u] += ratings[i] - mu - (movieRow[i] >= 0 ? bi[movieRow[i]] : 0);
    nu[u]++;
  }
  for (let u = 0; u < users; u++) bu[u] /= USER_DAMPING + nu[u];
  const mean = new Float64Array(test.length).fill(mu);
  const biases = new Float64Array(test.length);
  for (let k = 0; k < test.length; k++) {
    const i = test[k];
    biases[k] = Math.min(5, Math.max(0.5, mu + bi[movieRow[i]] + bu[userRow[i]]));
  }
  return { mean, biases };
}

/** Each value's index in the sorted `ids`, or -1 (one binary search per rating, done once). */
function rowsOf(ids: Int32Array, values: Int32Array): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = binarySearch(ids, values[i]);
  return out;
}

function splitOf(entries: readonly RunEntry[], factorsDir: string): SplitSpec {
  const entry = entries.find((e) => e.dir === factorsDir);
  const d = checkJson(entry?.manifest.details, SplitDetails, `${path.join(factorsDir, "manifest.json")}: details`);
  return d.split ?? { kind: "hash", seed: d.seed, splitProp: d.splitProp };
}

/** The memo name of a set of entries (their manifest digests): what the report's figures depend on. */
export function reportMemoKey(entries: readonly RunEntry[]): string {
  return sha256Hex(canonicalJson({ v: MEMO_VERSION, entries: entries.map((e) => e.manifest.digest).sort() }));
}

/** The split an ALS factors entry was fitted with (its test rows are the others); older manifests: the hash split of seed and splitProp. */
const SplitDetails = v.object({ seed: v.number(), splitProp: v.number(), split: v.optional(SplitSpecSchema) });

export interface EvaluateOptions {
  /** The directory of memo files: a set of entries already evaluated is read back from there. */
  memoDir: string;
  logger?: Logger;
}

/** Evaluates the run's models on its test rows (the rows whose user and movie have ALS factors). */
export async function evaluate(entries: readonly RunEntry[], options: EvaluateOptions): Promise<Evaluation> {
  const { memoDir, logger } = options;
  const run = { runId: "", experimentId: "", entries: [...entries] };
  const kinds: ModelKind[] = entries.some((e) => e.manifest.kind === "keras-model") ? ["als", "keras"] : ["als"];
  const dirs = modelDirs(run, "als");
  const memo = `report-${reportMemoKey(entries)}.json`;
  const known = await readMemo(memoDir, memo, EvaluationSchema, logger);
  if (known) return known;

  // Both are DuckDB reads, which run on DuckDB's own threads: side by side.
  const [ratings, als] = await Promise.all([readRatingsColumns(dirs.ratings, { timestamps: true }), openModel("als", dirs)]);
  const mask = splitMaskOf(splitOf(entries, dirs.factors), ratings);
  const userRow = rowsOf(als.userIds, ratings.userIds);
  const movieRow = rowsOf(als.movieIds, ratings.movieIds);
  let n = 0;
  for (let i = 0; i < ratings.rows; i++) if (mask[i] === 0 && userRow[i] >= 0 && movieRow[i] >= 0) n++;
  const test = new Int32Array(n);
  n = 0;
  for (let i = 0; i < ratings.rows; i++) if (mask[i] === 0 && userRow[i] >= 0 && movieRow[i] >= 0) test[n++] = i;
  const users = Int32Array.from(test, (i) => ratings.userIds[i]);
  const movies = Int32Array.from(test, (i) => ratings.movieIds[i]);
  const actual = Float32Array.from(test, (i) => ratings.ratings[i]);
  // Each row at its own time, as the steps scored it (a model with time effects reads them).
  const stamps = ratings.timestamps;
  const times = stamps ? Float64Array.from(test, (i) => stamps[i]) : undefined;
  const base = baselines(userRow, movieRow, als.userIds.length, als.movieIds.length, ratings.ratings, mask, test);
  const scores: ModelScore[] = [
    { model: "global mean", rmse: rmse(base.mean, actual), rows: test.length },
    { model: "mean + biases", rmse: rmse(base.biases, actual), rows: test.length },
  ];
  const histograms: ErrorHistogram[] = [];
  for (const kind of kinds) {
    let model: ServedModel;
    try {
      // The light tfjs backend the fused trainer loaded already: scoring 1e4-1e6 pairs needs no libtensorflow.
      model = kind === "als" ? als : await openModel(kind, modelDirs(run, kind), { factors: als.factors, backend: "fused" });
    } catch (error) {
      // A model that cannot score pairs is left out of the figures; the others stay.
      if (!(error instanceof UnservableModelError)) throw error;
      logger?.warn({ model: error.dir }, `report: ${error.message.replace(/: use --model als$/, "")}; left out of the test figures`);
      continue;
    }
    try {
      const pred = await model.predict(users, movies, times);
      scores.push({ model: kind, rmse: rmse(pred, actual), rows: test.length });
      histograms.push(histogram(kind, pred, actual));
    } finally {
      model.dispose();
    }
  }
  const result: Evaluation = { testRows: test.length, scores, histograms };
  await writeMemo(memoDir, memo, result);
  return result;
}
