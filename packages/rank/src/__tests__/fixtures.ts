/**
 * Test fixtures (imported by tests only): ratings artifacts made by the real etl step, from
 * synthetic data or the real ml-latest-small when this machine has it.
 */
import { etl, resolveEtlParams, writeSyntheticRatings } from "@ms/etl";
import { existsSync } from "node:fs";
import path from "node:path";

/** ml-latest-small's ratings.csv: `$MS_MOVIELENS_SMALL` (its directory), else shared/ beside the repository. */
export const MOVIELENS_SMALL = path.join(
  process.env.MS_MOVIELENS_SMALL ?? path.resolve(__dirname, "../../../../../shared/movielens/ml-latest-small"),
  "ratings.csv",
);

/** A ratings artifact directory from `rows` synthetic ratings. */
export async function syntheticRatingsDir(
  root: string,
  name: string,
  options: { rows: number; users: number; movies: number; seed?: number },
): Promise<string> {
  const csv = path.join(root, `${name}.csv`);
  writeSyntheticRatings(csv, { seed: 1, ...options });
  const dir = path.join(root, name);
  await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), dir);
  return dir;
}

/** A ratings artifact of the real ml-latest-small, or undefined when it is not on this machine. */
export async function movielensSmallDir(root: string): Promise<string | undefined> {
  if (!existsSync(MOVIELENS_SMALL)) return undefined;
  const dir = path.join(root, "ml-latest-small");
  await etl({ ratingsCsv: MOVIELENS_SMALL }, resolveEtlParams({ max_row_limit: -1 }), dir);
  return dir;
}
