/**
 * Apache Arrow views of the factor matrices and of predictions, for callers that hand them on in
 * the columnar format (DuckDB, Arrow IPC, Python through pyarrow). Built zero-copy: every Arrow
 * column's data buffer is the very typed array the package already holds (ids as Int32, the flat
 * row-major factors as the child of a FixedSizeList<Float32>[rank], predictions as Float64), so a
 * table costs a few small objects whatever the number of rows.
 *
 * apache-arrow takes ~0.2 s to import, so it is loaded on first use, never by `import "@ms/als"`.
 */
import type { FixedSizeList, Float32, Float64, Int32, Table } from "apache-arrow";
import type { FactorTables } from "./types.js";

/** A factor table in Spark ALSModel's shape: `id` INT32, `features` a fixed-size list of rank FLOATs. */
export type FactorsTable = Table<{ id: Int32; features: FixedSizeList<Float32> }>;

/** Both factor tables of an artifact. */
export interface FactorsArrow {
  users: FactorsTable;
  items: FactorsTable;
}

/** Predictions beside the (userId, movieId) pairs they score; NaN where either id has no factors. */
export type PredictionsTable = Table<{ userId: Int32; movieId: Int32; prediction: Float64 }>;

type ArrowModule = typeof import("apache-arrow");
let arrowModule: Promise<ArrowModule> | undefined;

function loadArrow(): Promise<ArrowModule> {
  arrowModule ??= import("apache-arrow");
  return arrowModule;
}

/** One factor table over `ids` and the flat `factors` (ids.length x rank), sharing their buffers. */
export async function factorTable(ids: Int32Array, factors: Float32Array, rank: number): Promise<FactorsTable> {
  if (!Number.isInteger(rank) || rank < 1) throw new RangeError(`rank must be an integer >= 1, got ${rank}`);
  if (factors.length !== ids.length * rank)
    throw new RangeError(`factor matrix holds ${factors.length} values, expected ${ids.length} x ${rank}`);
  const arrow = await loadArrow();
  const child = arrow.makeData({ type: new arrow.Float32(), length: factors.length, nullCount: 0, data: factors });
  const type = new arrow.FixedSizeList(rank, new arrow.Field("element", new arrow.Float32(), false));
  const features = arrow.makeVector(arrow.makeData({ type, length: ids.length, nullCount: 0, child }));
  return new arrow.Table({ id: arrow.makeVector(ids), features }) as FactorsTable;
}

/** Arrow tables of both factor matrices, sharing their buffers. */
export async function factorsToArrow(tables: FactorTables): Promise<FactorsArrow> {
  const [users, items] = await Promise.all([
    factorTable(tables.userIds, tables.userFactors, tables.rank),
    factorTable(tables.itemIds, tables.itemFactors, tables.rank),
  ]);
  return { users, items };
}

/**
 * A table of predictions over the arrays given: `prediction` shares `predictions`' buffer, and the
 * id columns share `userIds` / `movieIds` when they are Int32Arrays (other array-likes are copied).
 */
export async function predictionsTable(
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
  predictions: Float64Array,
): Promise<PredictionsTable> {
  if (userIds.length !== predictions.length || movieIds.length !== predictions.length) {
    throw new RangeError(
      `userIds (${userIds.length}), movieIds (${movieIds.length}) and predictions (${predictions.length}) differ in length`,
    );
  }
  const arrow = await loadArrow();
  const int32 = (a: ArrayLike<number>) => (a instanceof Int32Array ? a : Int32Array.from(a));
  return new arrow.Table({
    userId: arrow.makeVector(int32(userIds)),
    movieId: arrow.makeVector(int32(movieIds)),
    prediction: arrow.makeVector(predictions),
  }) as PredictionsTable;
}
