/**
 * Spark reads our ratings Parquet and factor files (spark.read.parquet) with the expected schema
 * and values, and its predictions from our factors equal ours from `predict`: both a join plus dot
 * product in Spark SQL and a real ALSModel loaded with our files as its factor tables. One Spark
 * session (one Python process) serves every check.
 */
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { predict, readFactors } from "@ms/als";
import { readRatingsColumns, type RatingsColumns } from "@ms/etl";
import { buildArtifacts, type Artifacts } from "./fixtures.js";
import { runPython } from "./python.js";

interface Described {
  schema: string;
  nullable: Record<string, boolean>;
  rows: number;
  sums: Record<string, number>;
}

interface SparkResult {
  spark: string;
  ratings: Described;
  user_factors: Described & { feature_sum: number };
  item_factors: Described & { feature_sum: number };
  sql: (number | null)[];
  model: { rank: number; predictions: (number | null)[] };
}

let artifacts: Artifacts;
let cols: RatingsColumns;
let result: SparkResult;
let userIds: number[];
let movieIds: number[];

beforeAll(async () => {
  artifacts = await buildArtifacts();
  cols = await readRatingsColumns(artifacts.ratingsDir);
  // Every 250th rating's pair (both sides of the split), plus pairs Spark and we must both leave
  // unscored: an unknown user, an unknown movie.
  userIds = [];
  movieIds = [];
  for (let i = 0; i < cols.rows; i += 250) {
    userIds.push(cols.userIds[i]);
    movieIds.push(cols.movieIds[i]);
  }
  userIds.push(2_000_000_000, cols.userIds[0]);
  movieIds.push(cols.movieIds[0], 2_000_000_000);
  const pairs = path.join(artifacts.root, "pairs.json");
  await writeFile(pairs, JSON.stringify({ userIds, movieIds }));
  result = await runPython<SparkResult>(inject("pythonVenv"), "spark_interop.py", [
    artifacts.ratingsFile,
    artifacts.factorsDir,
    pairs,
    artifacts.root,
  ]);
});

afterAll(async () => {
  if (artifacts) await rm(artifacts.root, { recursive: true, force: true });
});

const sum = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
};

describe("Spark", () => {
  it("reads the ratings Parquet with schema userId int, movieId int, rating float and our values", () => {
    expect(result.ratings.schema).toBe("struct<userId:int,movieId:int,rating:float>");
    expect(result.ratings.rows).toBe(cols.rows);
    expect(result.ratings.sums.userId).toBe(sum(cols.userIds));
    expect(result.ratings.sums.movieId).toBe(sum(cols.movieIds));
    // Half-star ratings are exact in binary, so the double sum is exact in any order.
    expect(result.ratings.sums.rating).toBe(sum(cols.ratings));
  });

  it("reads the factor files with ALSModel's schema (id int, features array<float>) and our factors", async () => {
    const factors = await readFactors(artifacts.factorsDir);
    for (const [described, ids, values] of [
      [result.user_factors, factors.userIds, factors.userFactors],
      [result.item_factors, factors.itemIds, factors.itemFactors],
    ] as const) {
      expect(described.schema).toBe("struct<id:int,features:array<float>>");
      expect(described.rows).toBe(ids.length);
      expect(described.sums.id).toBe(sum(ids));
      // Float sums in another order: equal to rounding, relative to the sum of magnitudes.
      const scale = sum(values.map(Math.abs));
      expect(Math.abs(described.feature_sum - sum(values))).toBeLessThan(scale * 1e-12);
    }
  });

  it("predicts what `predict` predicts from our factors: Spark SQL dot products and a loaded ALSModel", async () => {
    const ours = await predict(artifacts.factorsDir, userIds, movieIds);
    const n = userIds.length;
    expect(result.sql).toHaveLength(n);
    expect(result.model.predictions).toHaveLength(n);
    expect(result.model.rank).toBe((await readFactors(artifacts.factorsDir)).rank);
    let scored = 0;
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(ours[i])) {
        expect(result.sql[i], `pair ${i} (${userIds[i]}, ${movieIds[i]})`).toBeNull();
        expect(result.model.predictions[i], `pair ${i}`).toBeNull();
        continue;
      }
      scored++;
      // Spark SQL here multiplies in double, as predict does: equal to the last bits.
      expect(Math.abs((result.sql[i] as number) - ours[i]), `pair ${i}`).toBeLessThan(1e-9);
      // ALSModel computes a float32 dot product (BLAS sdot).
      expect(Math.abs((result.model.predictions[i] as number) - ours[i]), `pair ${i}`).toBeLessThan(1e-5);
    }
    expect(scored).toBeGreaterThan(n - 10);
    expect(n - scored).toBeGreaterThanOrEqual(2);
  });
});
