/**
 * Test fixtures (imported by tests only): ratings artifacts made by the real etl step from
 * synthetic data, and hand-made Parquet files (including broken ones) written with DuckDB.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { etl, resolveEtlParams, writeSyntheticRatings } from "@ms/etl";
import { existsSync } from "node:fs";
import path from "node:path";

/** ml-latest-small's ratings.csv: `$MS_MOVIELENS_SMALL` (its directory), else shared/ beside the repository. */
export const MOVIELENS_SMALL = path.join(
  process.env.MS_MOVIELENS_SMALL ?? path.resolve(__dirname, "../../../../shared/movielens/ml-latest-small"),
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

export interface RatingRows {
  userIds: ArrayLike<number>;
  movieIds: ArrayLike<number>;
  ratings: ArrayLike<number>;
}

/** Writes a Parquet file; `types` overrides column types to make wrong-schema files. */
export async function writeRatingsParquet(
  file: string,
  rows: RatingRows,
  types: { userId?: string; movieId?: string; rating?: string } = {},
): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    await conn.run("CREATE TABLE r (userId INTEGER, movieId INTEGER, rating FLOAT)");
    const appender = await conn.createAppender("r");
    for (let i = 0; i < rows.userIds.length; i++) {
      appender.appendInteger(rows.userIds[i]);
      appender.appendInteger(rows.movieIds[i]);
      appender.appendFloat(rows.ratings[i]);
      appender.endRow();
    }
    appender.closeSync();
    const cast = (name: keyof typeof types, def: string) => `${name}::${types[name] ?? def} AS ${name}`;
    await conn.run(
      `COPY (SELECT ${cast("userId", "INTEGER")}, ${cast("movieId", "INTEGER")}, ${cast("rating", "FLOAT")} FROM r) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`,
    );
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A small dense-ish ratings table: `users` x `movies` with a rank-2 pattern plus noise. */
export function smallRatings(users: number, movies: number, seed = 3): { userIds: number[]; movieIds: number[]; ratings: number[] } {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const out = { userIds: [] as number[], movieIds: [] as number[], ratings: [] as number[] };
  const a = Array.from({ length: users }, () => [next(), next()]);
  const b = Array.from({ length: movies }, () => [next(), next()]);
  for (let u = 0; u < users; u++) {
    for (let m = 0; m < movies; m++) {
      if (next() < 0.4) continue;
      const r = 1 + 2 * (a[u][0] * b[m][0] + a[u][1] * b[m][1]) + 0.5 * next();
      out.userIds.push(u + 1);
      out.movieIds.push(100 + m);
      out.ratings.push(Math.min(5, Math.max(0.5, Math.round(r * 2) / 2)));
    }
  }
  return out;
}
