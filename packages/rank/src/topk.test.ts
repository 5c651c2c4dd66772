/** Top-k selection against a full sort of the same scores, with exclusions and ties. */
import { mulberry32 } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { TopKSelector, topK } from "./topk.js";

/** The reference: every candidate sorted by score descending, then tie key ascending. */
function bySort(scores: number[], k: number, exclude: Set<number>, ids?: number[]): number[] {
  return scores
    .map((s, i) => ({ s, i, t: ids ? ids[i] : i }))
    .filter((c) => !exclude.has(c.i) && c.s > Number.NEGATIVE_INFINITY)
    .sort((a, b) => b.s - a.s || a.t - b.t)
    .slice(0, k)
    .map((c) => c.i);
}

describe("topK", () => {
  it("matches a full sort on random scores with many ties, with and without exclusions", () => {
    const random = mulberry32(7);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(random() * 200);
      const k = 1 + Math.floor(random() * 20);
      const scores = Array.from({ length: n }, () => Math.floor(random() * 10) / 2);
      const exclude = [...new Set(Array.from({ length: Math.floor(random() * n) }, () => Math.floor(random() * n)))];
      const got = topK(scores, k, { exclude });
      const want = bySort(scores, k, new Set(exclude));
      expect([...got.index.subarray(0, got.count)]).toEqual(want);
      expect(got.count).toBe(want.length);
    }
  });

  it("breaks ties by the given ids, and skips NaN and -Infinity", () => {
    const scores = [1, 1, 1, Number.NaN, Number.NEGATIVE_INFINITY, 0];
    const ids = [30, 10, 20, 1, 2, 40];
    const got = topK(scores, 10, { ids });
    expect([...got.index.subarray(0, got.count)]).toEqual([1, 2, 0, 5]);
    expect([...got.score.subarray(0, got.count)]).toEqual([1, 1, 1, 0]);
  });

  it("reuses one selector across calls without leaking an exclusion into the next", () => {
    const sel = new TopKSelector(4, 2);
    const a = sel.select([4, 3, 2, 1], [0]);
    expect([...a.index.subarray(0, a.count)]).toEqual([1, 2]);
    const b = sel.select([4, 3, 2, 1]);
    expect([...b.index.subarray(0, b.count)]).toEqual([0, 1]);
  });
});
