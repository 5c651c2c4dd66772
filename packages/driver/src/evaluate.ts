/**
 * The test-set figures of a run's report: the RMSE of every model of the run on the test rows of
 * the shared split, beside two simple baselines fitted on the training rows (the global mean, and
 * the mean plus damped movie and user biases), and each model's error histogram. Computed once per
 * set of entries and kept as a memo under the cache's meta/ directory, so a fully cached run
 * reports without loading DuckDB or TensorFlow.js again.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { canonicalJson, sha256Hex, splitMask, writeFileAtomic } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import type { RunEntry } from "./recommend.js";
import { modelDirs } from "./recommend.js";
import type { Logger } from "@ms/contracts";
import { openModel, UnservableModelError, type ModelKind, type ServedModel } from "./serve.js";

/** Error histogram bins: prediction minus actual rating, in [-ERR_RANGE, ERR_RANGE], width ERR_STEP. */
const ERR_RANGE = 4.5;
const ERR_STEP = 0.25;
/** Damping of the bias baseline (Koren's usual values): movie biases, then user biases. */
const MOVIE_DAMPING = 25;
const USER_DAMPING = 10;
const MEMO_VERSION = 1;

export interface ModelScore {
  model: string;
  rmse: number;
  rows: number;
}

export interface ErrorHistogram {
  model: string;
  /** Lower edges; each bin is ERR_STEP wide. Errors outside the range fall in the outer bins. */
  bins: { from: number; to: number; count: number }[];
}

export interface Evaluation {
  testRows: number;
  scores: ModelScore[];
  histograms: ErrorHistogram[];
}

function histogram(model: string, pred: Float64Array, actual: Float32Array): ErrorHistogram {
  const n = Math.round((2 * ERR_RANGE) / ERR_STEP);
  const counts = new Float64Array(n);
  for (let i = 0; i < pred.length; i++) {
    const b = Math.floor((pred[i] - actual[i] + ERR_RANGE) / ERR_STEP);
    counts[b < 0 ? 0 : b >= n ? n - 1 : b]++;
  }
  return { model, bins: Array.from(counts, (count, b) => ({ from: -ERR_RANGE + b * ERR_STEP, to: -ERR_RANGE + (b + 1) * ERR_STEP, count })) };
}

function rmse(pred: Float64Array, actual: Float32Array): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i] - actual[i];
    s += d * d;
  }
  return Math.sqrt(s / pred.length);
}

/** The baselines on the test rows: global mean and damped biases, fitted on the training rows. */
function baselines(users: Int32Array, movies: Int32Array, ratings: Float32Array, mask: Uint8Array, test: Int32Array): { mean: Float64Array; biases: Float64Array } {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < ratings.length; i++) if (mask[i] === 1) (sum += ratings[i]), count++;
  const mu = count ? sum / count : 0;
  const movieSum = new Map<number, [number, number]>();
  for (let i = 0; i < ratings.length; i++) {
    if (mask[i] !== 1) continue;
    const e = movieSum.get(movies[i]) ?? [0, 0];
    e[0] += ratings[i] - mu;
    e[1]++;
    movieSum.set(movies[i], e);
  }
  const bi = new Map<number, number>();
  for (const [m, [s, n]] of movieSum) bi.set(m, s / (MOVIE_DAMPING + n));
  const userSum = new Map<number, [number, number]>();
  for (let i = 0; i < ratings.length; i++) {
    if (mask[i] !== 1) continue;
    const e = userSum.get(users[i]) ?? [0, 0];
    e[0] += ratings[i] - mu - (bi.get(movies[i]) ?? 0);
    e[1]++;
    userSum.set(users[i], e);
  }
  const bu = new Map<number, number>();
  for (const [u, [s, n]] of userSum) bu.set(u, s / (USER_DAMPING + n));
  const mean = new Float64Array(test.length).fill(mu);
  const biases = new Float64Array(test.length);
  for (let k = 0; k < test.length; k++) {
    const i = test[k];
    biases[k] = Math.min(5, Math.max(0.5, mu + (bi.get(movies[i]) ?? 0) + (bu.get(users[i]) ?? 0)));
  }
  return { mean, biases };
}

/** The memo name of a set of entries (their manifest digests): what the report's figures depend on. */
export function reportMemoKey(entries: readonly RunEntry[]): string {
  return sha256Hex(canonicalJson({ v: MEMO_VERSION, entries: entries.map((e) => e.manifest.digest).sort() }));
}

/** A memo file under the cache's meta/ directory, or undefined when absent or unreadable. */
export async function readMemo<T>(cacheRoot: string, name: string): Promise<T | undefined> {
  return fs.readFile(path.join(cacheRoot, "meta", name), "utf8").then((t) => JSON.parse(t) as T, () => undefined);
}

/** Writes a memo; best effort (a read-only cache recomputes next time). */
export async function writeMemo(cacheRoot: string, name: string, value: unknown): Promise<void> {
  await writeFileAtomic(path.join(cacheRoot, "meta", name), JSON.stringify(value)).catch(() => undefined);
}

/** Evaluates the run's models on its test rows (the rows whose user and movie have ALS factors). */
export async function evaluate(entries: readonly RunEntry[], cacheRoot: string, logger?: Logger): Promise<Evaluation> {
  const run = { runId: "", experimentId: "", entries: [...entries] };
  const kinds: ModelKind[] = entries.some((e) => e.manifest.kind === "keras-model") ? ["als", "keras"] : ["als"];
  const dirs = modelDirs(run, "als");
  const memo = `report-${reportMemoKey(entries)}.json`;
  const known = await readMemo<Evaluation>(cacheRoot, memo);
  if (known && Array.isArray(known.scores) && Array.isArray(known.histograms)) return known;

  const ratings = await readRatingsColumns(dirs.ratings);
  const factorsDetails = entries.find((e) => e.dir === dirs.factors)!.manifest.details as { seed: number; splitProp: number };
  const mask = splitMask(ratings.userIds, ratings.movieIds, factorsDetails.seed, factorsDetails.splitProp);
  const als = await openModel("als", dirs);
  const testList: number[] = [];
  for (let i = 0; i < ratings.rows; i++) if (mask[i] === 0 && als.hasUser(ratings.userIds[i]) && als.hasMovie(ratings.movieIds[i])) testList.push(i);
  const test = Int32Array.from(testList);
  const users = Int32Array.from(test, (i) => ratings.userIds[i]);
  const movies = Int32Array.from(test, (i) => ratings.movieIds[i]);
  const actual = Float32Array.from(test, (i) => ratings.ratings[i]);
  const base = baselines(ratings.userIds, ratings.movieIds, ratings.ratings, mask, test);
  const scores: ModelScore[] = [
    { model: "global mean", rmse: rmse(base.mean, actual), rows: test.length },
    { model: "mean + biases", rmse: rmse(base.biases, actual), rows: test.length },
  ];
  const histograms: ErrorHistogram[] = [];
  for (const kind of kinds) {
    let model: ServedModel;
    try {
      model = kind === "als" ? als : await openModel(kind, modelDirs(run, kind));
    } catch (error) {
      // A model that cannot score pairs is left out of the figures; the others stay.
      if (!(error instanceof UnservableModelError)) throw error;
      logger?.warn({ model: error.dir }, `report: ${error.message.replace(/: use --model als$/, "")}; left out of the test figures`);
      continue;
    }
    try {
      const pred = await model.predict(users, movies);
      scores.push({ model: kind, rmse: rmse(pred, actual), rows: test.length });
      histograms.push(histogram(kind, pred, actual));
    } finally {
      model.dispose();
    }
  }
  const result: Evaluation = { testRows: test.length, scores, histograms };
  await writeMemo(cacheRoot, memo, result);
  return result;
}
