/**
 * Ratings as an Apache Arrow `Table`, the in-memory seam the design names: the table is built over
 * the typed arrays `readRatingsColumns` returns, without copying them, so handing ratings to Arrow
 * tooling costs no memory. apache-arrow takes ~0.2 s to load, so it is imported on first use only.
 */
import type { Float32, Int32, Table } from "apache-arrow";
import { BadParameterError } from "@ms/contracts";
import type { RatingsColumns } from "./adapter.js";

/** userId INT32, movieId INT32, rating FLOAT, no nulls: the ratings contract as Arrow types. */
export type RatingsTable = Table<{ userId: Int32; movieId: Int32; rating: Float32 }>;

/**
 * An Arrow table whose column buffers are the very arrays in `columns` (zero-copy): writing to
 * `columns.ratings` changes the table too, and the table keeps the arrays alive.
 */
export async function ratingsTable(columns: RatingsColumns): Promise<RatingsTable> {
  const { rows, userIds, movieIds, ratings } = columns;
  if (userIds.length !== rows || movieIds.length !== rows || ratings.length !== rows) {
    throw new BadParameterError(
      "columns",
      `userIds, movieIds and ratings must each hold ${rows} values, got ${userIds.length}, ${movieIds.length}, ${ratings.length}`,
    );
  }
  const { makeTable } = await import("apache-arrow");
  return makeTable({ userId: userIds, movieId: movieIds, rating: ratings });
}
