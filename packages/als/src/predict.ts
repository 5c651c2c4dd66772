/**
 * Scoring with published factors: the rating a user would give a movie is the dot product of
 * their factor vectors (double precision over the stored float32 values, as the als step scores
 * its own metrics). Ids without factors predict NaN, as Spark's coldStartStrategy "nan" does.
 * `predictTable` returns the same predictions as an Apache Arrow table over the same arrays.
 */
import { BadParameterError } from "@ms/contracts";
import { readFactors } from "./adapter.js";
import { predictionsTable, type PredictionsTable } from "./arrow.js";
import { binarySearch } from "@ms/contracts";
import { dot } from "./model.js";
import type { Factors } from "./types.js";

/** Predictions for (userIds[i], movieIds[i]) from loaded factors. */
export function predictWith(
  factors: Pick<Factors, "rank" | "userIds" | "userFactors" | "itemIds" | "itemFactors">,
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
): Float64Array {
  if (userIds.length !== movieIds.length)
    throw new BadParameterError("movieIds", `has ${movieIds.length} entries, userIds has ${userIds.length}`);
  const { rank } = factors;
  const out = new Float64Array(userIds.length);
  for (let i = 0; i < out.length; i++) {
    const u = binarySearch(factors.userIds, userIds[i]);
    const m = binarySearch(factors.itemIds, movieIds[i]);
    out[i] = u < 0 || m < 0 ? Number.NaN : dot(factors.userFactors, u * rank, factors.itemFactors, m * rank, rank);
  }
  return out;
}

/** Loads the factors artifact at `dir` and predicts (userIds[i], movieIds[i]). */
export async function predict(dir: string, userIds: ArrayLike<number>, movieIds: ArrayLike<number>): Promise<Float64Array> {
  return predictWith(await readFactors(dir), userIds, movieIds);
}

/**
 * `predict` as an Apache Arrow table (userId, movieId, prediction): the prediction column's buffer
 * is the Float64Array `predictWith` returns, the id columns the Int32Arrays given (zero-copy).
 */
export async function predictTable(
  factors: string | Pick<Factors, "rank" | "userIds" | "userFactors" | "itemIds" | "itemFactors">,
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
): Promise<PredictionsTable> {
  const loaded = typeof factors === "string" ? await readFactors(factors) : factors;
  return predictionsTable(userIds, movieIds, predictWith(loaded, userIds, movieIds));
}
