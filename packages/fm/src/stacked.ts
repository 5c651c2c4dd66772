/**
 * The full fit's tables (`StackedTables`) as the stacked features read them: the six feature
 * columns of any pair of known ids (what the keras network trains on and serves with), the
 * prediction column alone (what ranking a catalog needs), and whether an id is known. The
 * out-of-fold scheme (oof.ts) writes its rows through the same `writePair`, so a served pair is
 * scored exactly as the test rows were.
 */
import { BadParameterError, binarySearch, positionLookup } from "@ms/contracts";
import { timeBias, type TimeTables } from "./timebias.js";
import { expectedRating, type OrdinalTables } from "./ordinal.js";

/** The feature columns, in order (the first is `bayes_prediction` or `als_prediction`). */
export function oofColumns(model: "bayes" | "als"): readonly string[] {
  return [`${model}_prediction`, "user_bias", "movie_bias", "user_log_count", "movie_log_count", "implicit"];
}
/** The bayes model's columns (the default's). */
export const OOF_COLUMNS = oofColumns("bayes");

/**
 * The full fit, enough to compute the features of any pair of known ids: sorted ids, then per
 * user / movie the bias, log(1 + training count) and factor, and per user the implicit vector
 * (the mean factor of the movies the user rated, scaled by 1/sqrt(count), as SVD++'s y sum).
 * prediction = (withBiases ? mu + b_u + b_m : 0) + [time biases at t] + p_u . q_m (bayes: effective
 * factors, implicit sums included; `time` on these tables' rows, with the time features).
 */
export interface StackedTables {
  model: "bayes" | "als";
  rank: number;
  mu: number;
  withBiases: boolean;
  userIds: Int32Array;
  itemIds: Int32Array;
  userBias: Float32Array;
  itemBias: Float32Array;
  userLogCount: Float32Array;
  itemLogCount: Float32Array;
  userFactors: Float32Array;
  itemFactors: Float32Array;
  userImplicit: Float32Array;
  time?: TimeTables;
  /** The bayes model's ordinal output: column 0 is then the expected rating at the latent prediction. */
  ordinal?: OrdinalTables;
}

/** The full fit's prediction of (user row u, movie row m) at `timestamp`: column 0 of the features. */
function pairPrediction(t: StackedTables, u: number, m: number, timestamp: number | undefined): number {
  const r = t.rank;
  const uo = u * r;
  const mo = m * r;
  let dot = 0;
  for (let f = 0; f < r; f++) dot += t.userFactors[uo + f] * t.itemFactors[mo + f];
  const time = t.time ? timeBias(t.time, u, m, timestamp) : 0;
  const latent = t.withBiases ? t.mu + t.userBias[u] + t.itemBias[m] + time + dot : dot;
  return t.ordinal ? expectedRating(t.ordinal.levels, t.ordinal.cuts, latent) : latent;
}

/** Writes the six features of dense pair (u, m) at `timestamp` at out[o..o+6). */
export function writePair(t: StackedTables, u: number, m: number, timestamp: number | undefined, out: Float32Array, o: number): void {
  const r = t.rank;
  const uo = u * r;
  const mo = m * r;
  let implicit = 0;
  for (let f = 0; f < r; f++) implicit += t.userImplicit[uo + f] * t.itemFactors[mo + f];
  out[o] = pairPrediction(t, u, m, timestamp);
  out[o + 1] = t.userBias[u];
  out[o + 2] = t.itemBias[m];
  out[o + 3] = t.userLogCount[u];
  out[o + 4] = t.itemLogCount[m];
  out[o + 5] = implicit;
}

/**
 * Features of (userIds[i], movieIds[i][, timestamps[i]]) from the full fit, `n * 6` values in
 * OOF_COLUMNS' layout: the same numbers the test rows were trained and scored with (no timestamps:
 * scored at the end of the training range). An id the fit never saw throws; see `stackedKnows`.
 */
export function stackedPairFeatures(
  t: StackedTables,
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
  timestamps?: ArrayLike<number>,
): Float32Array {
  const width = 6;
  const out = new Float32Array(userIds.length * width);
  eachPair(t, userIds, movieIds, (i, u, m) => writePair(t, u, m, timestamps?.[i], out, i * width));
  return out;
}

/**
 * The full fit's predictions of (userIds[i], movieIds[i][, timestamps[i]]): column 0 of
 * `stackedPairFeatures`, the same numbers, without the other columns (what ranking a catalog
 * needs). An id the fit never saw throws; see `stackedKnows`.
 */
export function stackedPredictions(
  t: StackedTables,
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
  timestamps?: ArrayLike<number>,
): Float32Array {
  const out = new Float32Array(userIds.length);
  eachPair(t, userIds, movieIds, (i, u, m) => {
    out[i] = pairPrediction(t, u, m, timestamps?.[i]);
  });
  return out;
}

/** Calls `visit(i, user row, movie row)` for each pair in order; an id the tables do not hold is a BadParameterError naming it. */
function eachPair(
  t: StackedTables,
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
  visit: (i: number, u: number, m: number) => void,
): void {
  const userAt = positionLookup(t.userIds);
  const movieAt = positionLookup(t.itemIds);
  for (let i = 0; i < userIds.length; i++) {
    const u = userAt(userIds[i]);
    const m = movieAt(movieIds[i]);
    if (u < 0) throw new BadParameterError("--user", `userId ${userIds[i]} has no training ratings in this model`);
    if (m < 0) throw new BadParameterError("--movie", `movieId ${movieIds[i]} has no training ratings in this model`);
    visit(i, u, m);
  }
}

/** Whether the full fit can score this user / movie. */
export function stackedKnows(t: StackedTables, side: "user" | "movie", id: number): boolean {
  return binarySearch(side === "user" ? t.userIds : t.itemIds, id) >= 0;
}
