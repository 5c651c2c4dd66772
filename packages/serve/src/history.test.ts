/**
 * `buildHistory`: each user's seen movies, each movie's training count and the training users,
 * under a hash split (every rating seen, the training part counted) and split=file (the test
 * file's ratings neither seen nor counted); `indexIds` on small and on large, sparse ids.
 */
import { describe, expect, it } from "vitest";
import { splitMask, type SplitSpec } from "@ms/contracts";
import { buildHistory, indexIds } from "./history.js";

const users = Int32Array.of(3, 1, 3, 7, 1, 3, 9);
const movies = Int32Array.of(10, 10, 20, 30, 40, 40, 10);

describe("buildHistory", () => {
  it("hash split: every rating is seen; only the training part counts", () => {
    const spec: SplitSpec = { kind: "hash", seed: 1, splitProp: 0.5 };
    const h = buildHistory({ rows: users.length, userIds: users, movieIds: movies }, spec);
    const train = splitMask(users, movies, 1, 0.5);
    expect(Array.from(h.users)).toEqual([1, 3, 7, 9]);
    expect(Array.from(h.seenOf(3) ?? []).sort((a, b) => a - b)).toEqual([10, 20, 40]);
    expect(Array.from(h.seenOf(1) ?? []).sort((a, b) => a - b)).toEqual([10, 40]);
    expect(h.seenOf(2)).toBeUndefined();
    for (const m of [10, 20, 30, 40, 50]) {
      const expected = Array.from(movies.keys()).filter((i) => movies[i] === m && train[i] === 1).length;
      expect(h.trainCount(m), `movie ${m}`).toBe(expected);
    }
    const trainUsers = [
      ...new Set(
        Array.from(users.keys())
          .filter((i) => train[i] === 1)
          .map((i) => users[i]),
      ),
    ].sort((a, b) => a - b);
    expect(Array.from(h.trainUsers)).toEqual(trainUsers);
  });

  it("split=file: the test file's ratings (split_key 1) are neither history nor counted", () => {
    const splitKey = Float32Array.of(0, 0, 1, 0, 1, 0, 1);
    const spec: SplitSpec = { kind: "file", seed: 42, splitProp: 0.5 };
    const h = buildHistory({ rows: users.length, userIds: users, movieIds: movies, splitKey }, spec);
    expect(Array.from(h.users)).toEqual([1, 3, 7]);
    expect(Array.from(h.seenOf(3) ?? []).sort((a, b) => a - b)).toEqual([10, 40]);
    expect(h.seenOf(9)).toBeUndefined();
    expect(Array.from(h.movies)).toEqual([10, 30, 40]);
    expect(Array.from(h.trainCounts)).toEqual([2, 1, 1]);
    expect(Array.from(h.trainUsers)).toEqual([1, 3, 7]);
  });
});

describe("indexIds", () => {
  it("gives the ascending distinct ids and each value's index, for small and for sparse large ids", () => {
    for (const ids of [Int32Array.of(5, 2, 5, 9, 2), Int32Array.of(2_000_000_000, 7, -3, 7, 2_000_000_000)]) {
      const { distinct, index } = indexIds(ids);
      const expected = [...new Set(ids)].sort((a, b) => a - b);
      expect(Array.from(distinct)).toEqual(expected);
      expect(Array.from(index, (k) => distinct[k])).toEqual(Array.from(ids));
    }
  });
});
