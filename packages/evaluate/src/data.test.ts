/**
 * `rankingData` on a hand-made set of ratings with a keyed split (split_key < 0.5: training): the
 * catalog is the training movies with their counts, the evaluated users those with a training and
 * a relevant test rating, seen and relevant lists per user, and the relevance threshold.
 * `evaluatedUsers` keeps @ms/rank's sample of users.
 */
import { describe, expect, it } from "vitest";
import type { RatingsColumns } from "@ms/etl";
import { splitHash } from "@ms/contracts";
import { sampleUsers } from "@ms/rank";
import { evaluatedUsers, keepUsers, rankingData, splitOfFactors } from "./data.js";

/** [user, movie, rating, test?] */
const ROWS: [number, number, number, boolean][] = [
  [1, 10, 5, false],
  [1, 20, 3, false],
  [1, 30, 4, true],
  [1, 40, 2, true],
  [2, 10, 4, false],
  [2, 30, 1, true],
  [3, 20, 5, false], // no test rating: not evaluated
  [4, 50, 5, true], // no training rating: not evaluated
  [5, 30, 4.5, false],
  [5, 10, 3.5, false],
  [5, 60, 4, true], // 60 has no training rating: relevant, outside the catalog
];

function columns(rows = ROWS): RatingsColumns {
  return {
    rows: rows.length,
    userIds: Int32Array.from(rows, (r) => r[0]),
    movieIds: Int32Array.from(rows, (r) => r[1]),
    ratings: Float32Array.from(rows, (r) => r[2]),
    splitKey: Float32Array.from(rows, (r) => (r[3] ? 0.9 : 0.1)),
  };
}

const SPLIT = { kind: "file" as const, seed: 0, splitProp: 0.5 };
const list = (l: { offsets: Int32Array; items: Int32Array }, u: number) => Array.from(l.items.subarray(l.offsets[u], l.offsets[u + 1]));

describe("rankingData", () => {
  const d = rankingData(columns(), SPLIT, 0);

  it("has the training movies as the catalog, with their training counts", () => {
    expect(Array.from(d.itemIds)).toEqual([10, 20, 30]);
    expect(Array.from(d.trainCount)).toEqual([3, 2, 1]);
    expect([d.trainRows, d.testRows]).toEqual([6, 5]);
  });

  it("evaluates the users with a training and a relevant test rating, every test rating relevant", () => {
    expect(Array.from(d.userIds)).toEqual([1, 2, 5]);
    expect(list(d.relevant, 0)).toEqual([30, 40]);
    expect(list(d.relevant, 1)).toEqual([30]);
    expect(list(d.relevant, 2)).toEqual([60]);
  });

  it("keeps each user's training movies as catalog indices, with their ratings beside them", () => {
    expect(list(d.seen, 0)).toEqual([0, 1]);
    expect(list(d.seen, 2)).toEqual([0, 2]);
    expect(Array.from(d.seenRatings.subarray(d.seen.offsets[2], d.seen.offsets[3]))).toEqual([3.5, 4.5]);
  });

  it("with rank_min_rating, counts only test ratings of at least that, and drops users left without one", () => {
    const t = rankingData(columns(), SPLIT, 3);
    expect(Array.from(t.userIds)).toEqual([1, 5]);
    expect(list(t.relevant, 0)).toEqual([30]);
  });

  it("keepUsers keeps the chosen users' lists whole", () => {
    const k = keepUsers(d, Int32Array.from([0, 2]));
    expect(Array.from(k.userIds)).toEqual([1, 5]);
    expect(list(k.seen, 1)).toEqual([0, 2]);
    expect(Array.from(k.seenRatings)).toEqual([5, 3, 3.5, 4.5]);
    expect(list(k.relevant, 0)).toEqual([30, 40]);
  });
});

describe("evaluatedUsers", () => {
  it("keeps every user under the cap, and @ms/rank's choice of users over it", () => {
    const rows: [number, number, number, boolean][] = [];
    for (let u = 1; u <= 50; u++) rows.push([u, 10, 4, false], [u, 20 + (u % 3), 3, true]);
    const d = rankingData(columns(rows), SPLIT, 0);
    expect(evaluatedUsers(d, 50, 1)).toBe(d);
    const kept = evaluatedUsers(d, 7, 1);
    expect(kept.userIds.length).toBe(7);
    expect(Array.from(kept.userIds)).toEqual(Array.from(sampleUsers(d.userIds, 7, (id) => splitHash(id, 0, 1))));
    expect(Array.from(evaluatedUsers(d, 7, 2).userIds)).not.toEqual(Array.from(kept.userIds));
    for (let u = 0; u < 7; u++) expect(list(kept.relevant, u)).toEqual([20 + (kept.userIds[u] % 3)]);
  });
});

describe("splitOfFactors", () => {
  it("reads the split a factors manifest records, and names the file when it cannot", () => {
    expect(splitOfFactors({ seed: 3, splitProp: 0.8 }, "/x")).toEqual({ kind: "hash", seed: 3, splitProp: 0.8 });
    expect(splitOfFactors({ seed: 3, splitProp: 0.8, split: SPLIT }, "/x")).toEqual(SPLIT);
    expect(() => splitOfFactors({ seed: "3" }, "/x")).toThrow(/\/x\/manifest\.json/);
  });
});
