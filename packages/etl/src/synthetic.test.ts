/**
 * The synthetic dataset: exact size, deterministic bytes for a seed and kind, MovieLens's format and
 * value rules, the skew and structure that make it a fair stand-in for real ratings, and the
 * property each kind is built to have, measured on a sample against the lowrank kind.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BadParameterError, sha256Hex } from "@ms/contracts";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { SYNTHETIC_KINDS, type SyntheticKind, syntheticShape, writeSyntheticRatings } from "./synthetic.js";
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
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, etl_keep_timestamp: "true" }), path.join(dir, "out"));
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

describe("synthetic kinds", () => {
  const rows = 40_000;
  const files = new Map<SyntheticKind, string>();
  /** One file per kind, made once for the whole block (kept outside the per-test temp dirs). */
  const csvOf = async (kind: SyntheticKind): Promise<string> => {
    let file = files.get(kind);
    if (!file) {
      const dir = await mkdtemp(path.join(os.tmpdir(), "ms-etl-kinds-"));
      file = path.join(dir, `${kind}.csv`);
      writeSyntheticRatings(file, { rows, seed: 7, kind });
      files.set(kind, file);
    }
    return file;
  };
  const fileOf = async (kind: SyntheticKind): Promise<string> => `read_csv('${await csvOf(kind)}')`;
  afterAll(async () => {
    await Promise.all([...files.values()].map((f) => rm(path.dirname(f), { recursive: true, force: true })));
  });
  const one = async (sql: string): Promise<number> => Number((await queryRows(sql))[0][0]);

  it.each(SYNTHETIC_KINDS)("%s: exact rows, MovieLens's value rules, the same bytes for the same seed", async (kind) => {
    const dir = await tempDir();
    const again = path.join(dir, "again.csv");
    writeSyntheticRatings(again, { rows, seed: 7, kind });
    const src = await fileOf(kind);
    const [a, b] = await Promise.all([readFile(again), readFile(await csvOf(kind))]);
    expect(sha256Hex(a)).toBe(sha256Hex(b));
    const [[n, users, minR, maxR, offHalf, dupes]] = await queryRows(
      `SELECT count(*), count(DISTINCT userId), min(rating), max(rating), count(*) FILTER (rating * 2 <> round(rating * 2)),
              count(*) - count(DISTINCT (userId, movieId)) FROM ${src}`,
    );
    expect([n, users, minR, maxR, offHalf, dupes]).toEqual([rows, syntheticShape({ rows, seed: 7 }).users, 0.5, 5, 0, 0]);
    expect(await one(`SELECT min(n) FROM (SELECT count(*) n FROM ${src} GROUP BY userId)`)).toBeGreaterThanOrEqual(20);
  });

  it("kinds differ, and lowrank is the kind when none is given", async () => {
    const dir = await tempDir();
    const plain = path.join(dir, "plain.csv");
    writeSyntheticRatings(plain, { rows, seed: 7 });
    const digests = await Promise.all([plain, ...SYNTHETIC_KINDS.map(csvOf)].map(async (f) => sha256Hex(await readFile(await f))));
    expect(digests[0]).toBe(digests[1]);
    expect(new Set(digests.slice(1)).size).toBe(SYNTHETIC_KINDS.length);
  });

  /** Held-out gain in squared error of adding a user's mean residual on the same day to their mean. */
  const dayGain = async (kind: SyntheticKind) =>
    one(
      `WITH t AS (SELECT *, timestamp // 86400 AS day, hash(userId, movieId) % 5 = 0 AS test FROM ${await fileOf(kind)}),
            um AS (SELECT userId, avg(rating) m FROM t WHERE NOT test GROUP BY userId),
            dm AS (SELECT userId, day, avg(rating - um.m) r, count(*) n FROM t JOIN um USING (userId) WHERE NOT test GROUP BY userId, day)
       SELECT avg((rating - um.m) ^ 2) - avg((rating - um.m - dm.r * dm.n / (dm.n + 2)) ^ 2)
       FROM t JOIN um USING (userId) JOIN dm USING (userId, day) WHERE test`,
    );
  /** How much movies' mean ratings move between the older and newer half of the ratings, over what sampling explains. */
  const movieDrift = async (kind: SyntheticKind) => {
    const src = await fileOf(kind);
    return one(
      `WITH mid AS (SELECT median(timestamp) t FROM ${src}),
            h AS (SELECT count(*) FILTER (timestamp < mid.t) n1, count(*) FILTER (timestamp >= mid.t) n2,
                         avg(rating) FILTER (timestamp < mid.t) a1, avg(rating) FILTER (timestamp >= mid.t) a2, var_samp(rating) v
                  FROM ${src}, mid GROUP BY movieId)
       SELECT avg((a2 - a1) ^ 2) / avg(v * (1.0 / n1 + 1.0 / n2)) FROM h WHERE n1 >= 10 AND n2 >= 10`,
    );
  };

  it("drift: years of timestamps, movies drifting over them, and per-user day effects a model can use", async () => {
    const src = await fileOf("drift");
    expect(await one(`SELECT (max(timestamp) - min(timestamp)) / 31557600 FROM ${src}`)).toBeGreaterThan(20);
    expect(
      await one(`SELECT median(s) FROM (SELECT (max(timestamp) - min(timestamp)) / 31557600 s FROM ${src} GROUP BY userId)`),
    ).toBeGreaterThan(1);
    const [drift, flat] = [await movieDrift("drift"), await movieDrift("lowrank")];
    expect(drift).toBeGreaterThan(2);
    expect(flat).toBeLessThan(1.5);
    const [dayDrift, dayFlat] = [await dayGain("drift"), await dayGain("lowrank")];
    expect(dayDrift).toBeGreaterThan(0.08);
    expect(dayFlat).toBeLessThan(0);
  });

  it("powerlaw: a heavier activity tail, and a movie's rating count says how it is rated", async () => {
    const topUsers = async (kind: SyntheticKind) =>
      one(
        `WITH c AS (SELECT count(*) n FROM ${await fileOf(kind)} GROUP BY userId),
              r AS (SELECT n, row_number() OVER (ORDER BY n DESC) k, count(*) OVER () m FROM c)
         SELECT sum(n) FILTER (k <= m / 10) / sum(n) FROM r`,
      );
    const countVsMean = async (kind: SyntheticKind) =>
      one(`SELECT corr(ln(n), a) FROM (SELECT count(*) n, avg(rating) a FROM ${await fileOf(kind)} GROUP BY movieId HAVING count(*) >= 5)`);
    expect(await topUsers("powerlaw")).toBeGreaterThan((await topUsers("lowrank")) + 0.1);
    expect(await countVsMean("powerlaw")).toBeGreaterThan(0.15);
    expect(Math.abs(await countVsMean("lowrank"))).toBeLessThan(0.08);
  });

  it("taste: which movies a user rated follows their taste, so co-rated movies go together beyond popularity and activity", async () => {
    // Per pair of the 40 most-rated movies: how far the users who rated both stray from what the
    // pair's popularity predicts, as a share of that prediction (activity inflates every kind alike).
    const coRated = async (kind: SyntheticKind) =>
      one(
        `WITH t AS (SELECT userId, movieId FROM ${await fileOf(kind)}),
              top AS (SELECT movieId, count(*) n FROM t GROUP BY movieId ORDER BY n DESC, movieId LIMIT 40),
              r AS (SELECT userId, movieId FROM t JOIN top USING (movieId)),
              pairs AS (SELECT a.movieId x, b.movieId y, count(*) c FROM r a JOIN r b ON a.userId = b.userId AND a.movieId < b.movieId GROUP BY ALL),
              e AS (SELECT c, tx.n * ty.n / (SELECT count(DISTINCT userId) FROM t) expected FROM pairs JOIN top tx ON tx.movieId = x JOIN top ty ON ty.movieId = y)
         SELECT stddev_pop(c / expected) FROM e`,
      );
    const [taste, lowrank] = [await coRated("taste"), await coRated("lowrank")];
    expect(taste).toBeGreaterThan(1.5 * lowrank);
    // People rate what they chose to watch: the ratings given lean high.
    const mean = async (kind: SyntheticKind) => one(`SELECT avg(rating) FROM ${await fileOf(kind)}`);
    expect(await mean("taste")).toBeGreaterThan((await mean("lowrank")) + 0.1);
  });
});
