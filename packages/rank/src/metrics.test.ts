/**
 * The ranking metrics on small hand-made cases, each expected value written out from the
 * definition (Microsoft Recommenders' python_evaluation, binary relevance) in the test.
 */
import { describe, expect, it } from "vitest";
import { RankingAccumulator, rankingMetrics, rankingMetricsRecord } from "./metrics.js";

const d = (r: number) => 1 / Math.log(1 + r);

describe("rankingMetrics", () => {
  it("scores two users as the definitions say", () => {
    // User A: list [1, 2, 3], relevant {2, 3, 9}: hits at ranks 2 and 3.
    // User B: list [4, 5, 6], relevant {4}: hit at rank 1.
    const k = 3;
    const m = rankingMetrics(
      [
        { recommended: [1, 2, 3], relevant: new Set([2, 3, 9]) },
        { recommended: [4, 5, 6], relevant: new Set([4]) },
      ],
      { k, catalogSize: 12, trainCount: (item) => item * 10 },
    );
    const ndcgA = (d(2) + d(3)) / (d(1) + d(2) + d(3));
    const ndcgB = d(1) / d(1);
    const mapA = (1 / 2 + 2 / 3) / Math.min(k, 3);
    const mapB = 1 / 1 / Math.min(k, 1);
    expect(m.users).toBe(2);
    expect(m.precision).toBeCloseTo((2 / 3 + 1 / 3) / 2, 12);
    expect(m.recall).toBeCloseTo((2 / 3 + 1 / 1) / 2, 12);
    expect(m.ndcg).toBeCloseTo((ndcgA + ndcgB) / 2, 12);
    expect(m.map).toBeCloseTo((mapA + mapB) / 2, 12);
    expect(m.hitRate).toBe(1);
    expect(m.coverage).toBeCloseTo(6 / 12, 12);
    expect(m.popularityBias).toBeCloseTo(((1 + 2 + 3 + 4 + 5 + 6) * 10) / 6, 12);
  });

  it("divides precision by k for a short list and takes the ideal DCG over min(k, |relevant|)", () => {
    const k = 5;
    // One item listed, a hit; 7 relevant items: ideal DCG over 5 ranks, MAP over min(5, 7).
    const m = rankingMetrics([{ recommended: [7], relevant: new Set([7, 8, 9, 10, 11, 12, 13]) }], { k, catalogSize: 20 });
    expect(m.precision).toBeCloseTo(1 / k, 12);
    expect(m.recall).toBeCloseTo(1 / 7, 12);
    expect(m.ndcg).toBeCloseTo(d(1) / [1, 2, 3, 4, 5].reduce((s, r) => s + d(r), 0), 12);
    expect(m.map).toBeCloseTo(1 / 5, 12);
  });

  it("skips users with no relevant item and counts a user without hits as zero", () => {
    const acc = new RankingAccumulator({ k: 2, catalogSize: 4 });
    expect(acc.add([1, 2], new Set())).toBe(false);
    expect(acc.add([1, 2], new Set([3]))).toBe(true);
    expect(acc.add([3, 4], new Set([3]))).toBe(true);
    const m = acc.result();
    expect(m.users).toBe(2);
    expect(m.hitRate).toBeCloseTo(1 / 2, 12);
    expect(m.ndcg).toBeCloseTo((0 + 1) / 2, 12);
    // Only the evaluated users' lists count toward coverage: items 1, 2 (user 2), 3, 4 (user 3).
    expect(m.coverage).toBe(1);
  });

  it("looks only at the first k items of a longer list", () => {
    const m = rankingMetrics([{ recommended: [1, 2, 3], relevant: new Set([3]) }], { k: 2, catalogSize: 3 });
    expect(m.precision).toBe(0);
    expect(m.ndcg).toBe(0);
    expect(m.coverage).toBeCloseTo(2 / 3, 12);
  });

  it("gives zeros, not NaN, with no user", () => {
    const m = rankingMetrics([], { k: 10, catalogSize: 0 });
    for (const value of Object.values(m)) expect(Number.isFinite(value)).toBe(true);
    expect(m.users).toBe(0);
  });

  it("names the published metrics with k and a prefix", () => {
    const m = rankingMetrics([{ recommended: [1], relevant: new Set([1]) }], { k: 10, catalogSize: 1 });
    const record = rankingMetricsRecord(m, "popularity_");
    expect(Object.keys(record)).toContain("popularity_ndcg_at_10");
    expect(record.popularity_hit_rate_at_10).toBe(1);
    expect(record.popularity_eval_users).toBe(1);
  });

  it("refuses a k that is not a positive integer", () => {
    expect(() => new RankingAccumulator({ k: 0, catalogSize: 1 })).toThrow(/k must be a positive integer/);
  });
});
