/**
 * The synthetic dataset: exact size, deterministic bytes for a seed, MovieLens's format and value
 * rules, and the skew and structure that make it a fair stand-in for real ratings.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BadParameterError, sha256Hex } from "@ms/contracts";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { syntheticShape, writeSyntheticRatings } from "./synthetic.js";
import { queryRows, tempDir } from "./__tests__/helpers.js";

describe("synthetic ratings", () => {
  it("writes exactly the requested rows, the same bytes for the same seed, other bytes for another", async () => {
    const dir = await tempDir();
    const a = path.join(dir, "a.csv");
    const b = path.join(dir, "b.csv");
    const c = path.join(dir, "c.csv");
    writeSyntheticRatings(a, { rows: 50_000, seed: 1 });
    writeSyntheticRatings(b, { rows: 50_000, seed: 1 });
    writeSyntheticRatings(c, { rows: 50_000, seed: 2 });
    const [ta, tb, tc] = await Promise.all([a, b, c].map((f) => readFile(f)));
    expect(sha256Hex(ta)).toBe(sha256Hex(tb));
    expect(sha256Hex(ta)).not.toBe(sha256Hex(tc));
    const lines = ta.toString("latin1").trimEnd().split("\n");
    expect(lines[0]).toBe("userId,movieId,rating,timestamp");
    expect(lines.length - 1).toBe(50_000);
  });

  it("follows MovieLens's rules and skew, and passes the etl validation", async () => {
    const dir = await tempDir();
    const csv = path.join(dir, "ratings.csv");
    const shape = writeSyntheticRatings(csv, { rows: 60_000, seed: 3 });
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, etl_keep_timestamp: true }), path.join(dir, "out"));
    const src = `read_parquet('${path.join(dir, "out", "ratings.parquet")}')`;
    const [[rows, users, movies, minR, maxR, offHalf, dupes, minTs]] = await queryRows(
      `SELECT count(*), count(DISTINCT userId), count(DISTINCT movieId), min(rating), max(rating),
              count(*) FILTER (rating * 2 <> round(rating * 2)), count(*) - count(DISTINCT (userId, movieId)), min(timestamp) FROM ${src}`,
    );
    expect(rows).toBe(60_000);
    expect(users).toBe(shape.users);
    expect(movies).toBeGreaterThan(shape.movies * 0.5);
    expect(minR).toBe(0.5);
    expect(maxR).toBe(5);
    expect(offHalf).toBe(0);
    expect(dupes).toBe(0);
    expect(Number(minTs)).toBeGreaterThan(800_000_000);
    const [[minPerUser]] = await queryRows(`SELECT min(n) FROM (SELECT count(*) n FROM ${src} GROUP BY userId)`);
    expect(minPerUser).toBeGreaterThanOrEqual(20);
    // Popularity skew: the top 10% of movies hold far more than 10% of the ratings.
    const [[topShare]] = await queryRows(
      `WITH c AS (SELECT count(*) n FROM ${src} GROUP BY movieId), r AS (SELECT n, row_number() OVER (ORDER BY n DESC) k, count(*) OVER () m FROM c)
       SELECT sum(n) FILTER (k <= m / 10) / sum(n) FROM r`,
    );
    expect(Number(topShare)).toBeGreaterThan(0.3);
    // Activity skew: the busiest user rates many times the median user.
    const [[maxPer, medPer]] = await queryRows(`SELECT max(n), median(n) FROM (SELECT count(*) n FROM ${src} GROUP BY userId)`);
    expect(Number(maxPer)).toBeGreaterThan(4 * Number(medPer));
    // Structure: a user's mean rating predicts their held-out ratings better than the global mean.
    const [[gain]] = await queryRows(
      `WITH t AS (SELECT *, hash(userId, movieId) % 5 = 0 AS test FROM ${src}),
            um AS (SELECT userId, avg(rating) m FROM t WHERE NOT test GROUP BY userId),
            g AS (SELECT avg(rating) m FROM t WHERE NOT test)
       SELECT avg((rating - g.m) ^ 2) - avg((rating - um.m) ^ 2) FROM t JOIN um USING (userId), g WHERE test`,
    );
    expect(Number(gain)).toBeGreaterThan(0.05);
  });

  it("scales its shape like MovieLens and rejects impossible sizes", () => {
    expect(syntheticShape({ rows: 20_000_000, seed: 1 })).toMatchObject({ users: 133_333 });
    expect(syntheticShape({ rows: 20_000_000, seed: 1 }).movies).toBeGreaterThan(20_000);
    expect(syntheticShape({ rows: 100_000, seed: 1 }).movies).toBe(9000);
    expect(() => syntheticShape({ rows: 0, seed: 1 })).toThrow(BadParameterError);
    expect(() => syntheticShape({ rows: 100, seed: 1, users: 2, movies: 3 })).toThrow(/do not fit/);
  });
});
