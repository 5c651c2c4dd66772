/**
 * The feature plumbing on typed arrays: id lookups, the join to factor rows with the shared split,
 * Keras' validation tail, and batch assembly in the seed's order (movie factors, then user factors).
 */
import { isTraining } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { syntheticData } from "./__tests__/fixtures.js";
import { FeatureAssembler, featureWidth, joinRatings, makeIdIndex, mulberry32, shuffleInPlace, validationTail } from "./features.js";

describe("makeIdIndex", () => {
  it("finds rows of dense and of far-apart ids, and -1 for unknown ids", () => {
    for (const ids of [Int32Array.from([3, 5, 9, 200]), Int32Array.from([-7, 4, 2_000_000_000])]) {
      const index = makeIdIndex(ids);
      ids.forEach((id, row) => expect(index(id)).toBe(row));
      expect(index(6)).toBe(-1);
      expect(index(-8)).toBe(-1);
      expect(index(2_000_000_001)).toBe(-1);
    }
    expect(makeIdIndex(new Int32Array(0))(1)).toBe(-1);
  });
});

describe("joinRatings", () => {
  const { ratings, factors } = syntheticData({ users: 30, movies: 20, usersWithoutFactors: 3, seed: 9 });
  const split = { seed: 11, splitProp: 0.75 };
  const joined = joinRatings(ratings, factors, split);

  it("drops ratings without factors, counted per side of the split", () => {
    let train = 0;
    let test = 0;
    for (let i = 0; i < ratings.rows; i++) {
      if (ratings.userIds[i] <= 27) continue;
      if (isTraining(ratings.userIds[i], ratings.movieIds[i], split.seed, split.splitProp)) train++;
      else test++;
    }
    expect(train + test).toBeGreaterThan(0);
    expect(joined.droppedTrain).toBe(train);
    expect(joined.droppedTest).toBe(test);
    expect(joined.trainRows.length + joined.testRows.length + train + test).toBe(ratings.rows);
  });

  it("keeps file order and puts every kept rating on its hash side", () => {
    let k = 0;
    const side = new Uint8Array(joined.ratings.length);
    joined.trainRows.forEach((r) => (side[r] = 1));
    for (let i = 0; i < ratings.rows; i++) {
      if (ratings.userIds[i] > 27) continue;
      expect(factors.userIds[joined.userRow[k]]).toBe(ratings.userIds[i]);
      expect(factors.itemIds[joined.movieRow[k]]).toBe(ratings.movieIds[i]);
      expect(joined.ratings[k]).toBe(ratings.ratings[i]);
      expect(side[k]).toBe(isTraining(ratings.userIds[i], ratings.movieIds[i], split.seed, split.splitProp) ? 1 : 0);
      k++;
    }
    expect(Array.from(joined.trainRows)).toEqual([...joined.trainRows].sort((a, b) => a - b));
  });
});

describe("validationTail", () => {
  it("holds out the last rows like Keras' validation_split", () => {
    const rows = Int32Array.from({ length: 11 }, (_, i) => i * 2);
    const { fitRows, valRows } = validationTail(rows, 0.2);
    // Keras: split_at = int(11 * 0.8) = 8
    expect(Array.from(fitRows)).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    expect(Array.from(valRows)).toEqual([16, 18, 20]);
    expect(validationTail(rows, 0).valRows.length).toBe(0);
  });
});

describe("FeatureAssembler", () => {
  it("writes movie factors then user factors (then the dot product), and the ratings", () => {
    const { ratings, factors } = syntheticData({ users: 6, movies: 5, rank: 3, density: 1 });
    const joined = joinRatings(ratings, factors, { seed: 1, splitProp: 1 });
    const rows = Int32Array.from([4, 0, 7]);
    for (const set of ["factors", "factors+dot"] as const) {
      const a = new FeatureAssembler(set, factors, joined);
      expect(a.width).toBe(featureWidth(set, 3));
      const x = new Float32Array(3 * a.width).fill(Number.NaN);
      const y = new Float32Array(3);
      a.fill(rows, 1, 2, x, y);
      [0, 7].forEach((r, b) => {
        const m = factors.itemFactors.subarray(joined.movieRow[r] * 3, joined.movieRow[r] * 3 + 3);
        const u = factors.userFactors.subarray(joined.userRow[r] * 3, joined.userRow[r] * 3 + 3);
        const got = Array.from(x.subarray(b * a.width, (b + 1) * a.width));
        const want = [...m, ...u];
        if (set === "factors+dot") want.push(m.reduce((s, v, j) => s + v * u[j], 0));
        got.forEach((v, j) => expect(v).toBeCloseTo(want[j], 6));
        expect(y[b]).toBe(joined.ratings[r]);
      });
      expect(Number.isNaN(x[2 * a.width])).toBe(true);
    }
  });
});

describe("shuffleInPlace", () => {
  it("permutes deterministically for a seed", () => {
    const a = Int32Array.from({ length: 100 }, (_, i) => i);
    const b = a.slice();
    shuffleInPlace(a, mulberry32(5));
    shuffleInPlace(b, mulberry32(5));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
