/**
 * The evaluation protocols: the kfold partition, the time split per user, keyed splits, the
 * cold-start rule and the split parameters' cross checks.
 */
import { describe, expect, it } from "vitest";
import { BadParameterError } from "./errors.js";
import { paramResolver } from "./params.js";
import { mulberry32 } from "./random.js";
import {
  checkSplitParams,
  checkTestRatings,
  ColdStartRule,
  foldOf,
  splitHash,
  splitMask,
  splitMaskOf,
  splitParams,
  timeSplitKey,
  type SplitSpec,
} from "./split.js";

function pairs(n: number): { userIds: Int32Array; movieIds: Int32Array } {
  const userIds = new Int32Array(n);
  const movieIds = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    userIds[i] = 1 + (i % 97);
    movieIds[i] = 1 + Math.floor(i / 97) * 7;
  }
  return { userIds, movieIds };
}

describe("splitMaskOf", () => {
  it("hash is today's mask", () => {
    const cols = pairs(5000);
    const spec: SplitSpec = { kind: "hash", seed: 42, splitProp: 0.8 };
    expect(splitMaskOf(spec, cols)).toEqual(splitMask(cols.userIds, cols.movieIds, 42, 0.8));
    // A manifest from before the protocols has no kind: hash.
    expect(splitMaskOf({ seed: 42, splitProp: 0.8 }, cols)).toEqual(splitMask(cols.userIds, cols.movieIds, 42, 0.8));
  });

  it("kfold: the test parts of the folds partition the ratings, each near 1/k of them", () => {
    const cols = pairs(6000);
    const k = 5;
    const tested = new Uint8Array(6000);
    for (let fold = 1; fold <= k; fold++) {
      const mask = splitMaskOf({ kind: "kfold", seed: 7, splitProp: 0.8, folds: k, fold }, cols);
      let test = 0;
      for (let i = 0; i < mask.length; i++) {
        if (mask[i] === 0) {
          tested[i]++;
          test++;
          expect(foldOf(cols.userIds[i], cols.movieIds[i], 7, k)).toBe(fold);
          expect(Math.floor(splitHash(cols.userIds[i], cols.movieIds[i], 7) * k) + 1).toBe(fold);
        }
      }
      expect(Math.abs(test / 6000 - 1 / k)).toBeLessThan(0.03);
    }
    expect(tested.every((t) => t === 1)).toBe(true);
  });

  it("kfold without a fold is a BadParameterError naming fold", () => {
    expect(() => splitMaskOf({ kind: "kfold", seed: 1, splitProp: 0.8, folds: 3 }, pairs(10))).toThrow(/fold/);
  });

  it("file and time read etl's split_key: training iff split_key < split_prop", () => {
    const cols = { ...pairs(4), splitKey: Float32Array.of(0, 1, 0, 1) };
    expect([...splitMaskOf({ kind: "file", seed: 42, splitProp: 0.8 }, cols)]).toEqual([1, 0, 1, 0]);
    expect([...splitMaskOf({ kind: "file", seed: 42, splitProp: 0.01 }, cols)]).toEqual([1, 0, 1, 0]);
    expect(() => splitMaskOf({ kind: "time", seed: 42, splitProp: 0.8 }, pairs(4))).toThrow(/split_key/);
  });
});

describe("timeSplitKey", () => {
  it("tests each user's latest ratings, ties broken by movieId, whatever the row order", () => {
    // user 1: five ratings at times 50, 10, 40, 20, 40 (movies 5, 1, 9, 2, 3); user 2: one rating.
    const userIds = Int32Array.of(1, 1, 2, 1, 1, 1);
    const movieIds = Int32Array.of(5, 1, 8, 9, 2, 3);
    const times = [50, 10, 7, 40, 20, 40];
    const key = timeSplitKey(userIds, movieIds, times);
    // user 1 by (time, movie): m1 (10), m2 (20), m3 (40), m9 (40), m5 (50) -> keys 0.1, 0.3, 0.5, 0.7, 0.9.
    expect([...key].map((k) => Number(k.toFixed(4)))).toEqual([0.9, 0.1, 0.5, 0.7, 0.3, 0.5]);
    const mask = splitMaskOf({ kind: "time", seed: 0, splitProp: 0.6 }, { userIds, movieIds, splitKey: key });
    // user 1 keeps its first three for training; its two latest (m9, m5) test; user 2's only rating trains.
    expect([...mask]).toEqual([0, 1, 1, 0, 1, 1]);
    const shuffled = [5, 3, 1, 0, 4, 2];
    const again = timeSplitKey(
      Int32Array.from(shuffled, (i) => userIds[i]),
      Int32Array.from(shuffled, (i) => movieIds[i]),
      shuffled.map((i) => times[i]),
    );
    expect(shuffled.map((i, j) => again[j] === key[i])).toEqual(shuffled.map(() => true));
  });

  it("puts 1 - split_prop of each user's ratings (rounded) in the test part", () => {
    const n = 40;
    const userIds = new Int32Array(n).fill(3);
    const movieIds = Int32Array.from({ length: n }, (_, i) => i + 1);
    const times = Array.from({ length: n }, (_, i) => 1000 - i);
    const key = timeSplitKey(userIds, movieIds, times);
    const mask = splitMaskOf({ kind: "time", seed: 0, splitProp: 0.75 }, { userIds, movieIds, splitKey: key });
    const testMovies = [...mask].flatMap((m, i) => (m === 0 ? [movieIds[i]] : []));
    // Latest = smallest movieId here (times fall as the id grows): the 10 latest test.
    expect(testMovies).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe("ColdStartRule", () => {
  it("scores an unseen user by the mean plus the movie's bias, an unseen pair by the mean", () => {
    const userIds = Int32Array.of(1, 1, 2, 2, 3);
    const movieIds = Int32Array.of(10, 20, 10, 20, 10);
    const ratings = Float32Array.of(5, 3, 5, 3, 1);
    const mask = Uint8Array.of(1, 1, 1, 1, 0);
    const rule = new ColdStartRule({ userIds, movieIds, ratings }, mask);
    expect(rule.mean).toBe(4);
    const bMovie10 = (1 + 1) / (25 + 2);
    expect(rule.predict(99, 10)).toBeCloseTo(4 + bMovie10, 10);
    expect(rule.predict(99, 999)).toBe(4);
    expect(rule.predict(1, 999)).toBeGreaterThan(3.5);
  });

  it("gives the same bits from its dense table (small ids) as from its map (ids too large for one)", () => {
    const next = mulberry32(3);
    const n = 5000;
    const userIds = Int32Array.from({ length: n }, () => 1 + Math.floor(next() * 200));
    const movieIds = Int32Array.from({ length: n }, () => 1 + Math.floor(next() * 300));
    const ratings = Float32Array.from({ length: n }, () => 0.5 + Math.floor(next() * 10) / 2);
    const mask = Uint8Array.from({ length: n }, () => (next() < 0.8 ? 1 : 0));
    const dense = new ColdStartRule({ userIds, movieIds, ratings }, mask);
    // The same ratings with every id shifted past what a dense table may cover: the map holds them.
    const far = 1_500_000_000;
    const sparse = new ColdStartRule({ userIds: userIds.map((u) => u + far), movieIds: movieIds.map((m) => m + far), ratings }, mask);
    for (let u = 0; u <= 201; u += 7) for (let m = 0; m <= 301; m += 5) expect(sparse.predict(u + far, m + far)).toBe(dense.predict(u, m));
    // Hand-computed for one movie: its damped bias over its training rows.
    const rows = Array.from(mask.keys()).filter((i) => mask[i] === 1);
    const mu = rows.reduce((s, i) => s + ratings[i], 0) / rows.length;
    const of5 = rows.filter((i) => movieIds[i] === 5);
    const b5 = of5.reduce((s, i) => s + ratings[i] - mu, 0) / (25 + of5.length);
    expect(dense.predict(-1, 5)).toBeCloseTo(Math.min(5, Math.max(0.5, mu + b5)), 12);
  });
});

describe("split parameters", () => {
  const resolve = paramResolver(splitParams, checkSplitParams);
  it("default to today's hash split", () => {
    expect(resolve({})).toEqual({ split: "hash", split_prop: 0.8, folds: 5 });
  });
  it("refuse a fold without kfold, beyond folds, and kfold without a fold (naming fold)", () => {
    for (const bad of [{ split: "kfold" as const }, { split: "hash" as const, fold: 1 }, { split: "kfold" as const, folds: 3, fold: 4 }]) {
      const error = (() => {
        try {
          resolve(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(BadParameterError);
      expect((error as BadParameterError).message).toMatch(/fold/);
    }
    expect(() => resolve({ split: "kfold", folds: 1, fold: 1 })).toThrow(/folds/);
    expect(resolve({ split: "kfold", folds: 3, fold: 3 }).fold).toBe(3);
  });
  it("test_ratings goes with split=file only", () => {
    expect(() => checkTestRatings({ split: "file" })).toThrow(/test_ratings/);
    expect(() => checkTestRatings({ split: "hash", test_ratings: "/x" })).toThrow(/split=file/);
    expect(checkTestRatings({ split: "file", test_ratings: "/x" }).test_ratings).toBe("/x");
  });

  it("gives its numbers as tables (the ids with training rows), and a rule from them predicts the same bits", () => {
    const next = mulberry32(5);
    const n = 3000;
    const userIds = Int32Array.from({ length: n }, () => 1 + Math.floor(next() * 150));
    const movieIds = Int32Array.from({ length: n }, () => 1 + Math.floor(next() * 250));
    const ratings = Float32Array.from({ length: n }, () => 0.5 + Math.floor(next() * 10) / 2);
    const mask = Uint8Array.from({ length: n }, () => (next() < 0.7 ? 1 : 0));
    for (const shift of [0, 1_500_000_000]) {
      const rule = new ColdStartRule({ userIds: userIds.map((u) => u + shift), movieIds: movieIds.map((m) => m + shift), ratings }, mask);
      const t = rule.tables();
      const trainedMovies = [...new Set(movieIds.filter((_, i) => mask[i] === 1))].sort((a, b) => a - b).map((m) => m + shift);
      expect([...t.movieIds]).toEqual(trainedMovies);
      expect(t.userIds.length).toBe(new Set(userIds.filter((_, i) => mask[i] === 1)).size);
      expect(t.mean).toBe(rule.mean);
      const back = ColdStartRule.fromTables(t);
      for (let u = 0; u <= 152; u += 3)
        for (let m = 0; m <= 252; m += 7) expect(back.predict(u + shift, m + shift)).toBe(rule.predict(u + shift, m + shift));
    }
    expect(() =>
      ColdStartRule.fromTables({
        mean: 3,
        movieIds: Int32Array.of(1, 2),
        movieBias: Float64Array.of(0.1),
        userIds: new Int32Array(0),
        userBias: new Float64Array(0),
      }),
    ).toThrow(/2 ids but 1 biases/);
  });
});
