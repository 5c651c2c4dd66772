/**
 * Serving: EASE scores as sums of B's rows, seen items and rating floors excluded, reasons, the
 * popularity order (and EASE's answer for a user without a model item), and the batch path
 * giving exactly the single-user lists.
 */
import { describe, expect, it } from "vitest";
import { Ranker, type RankerModel } from "./ranker.js";

/** Four items (ids 10, 20, 30, 40; counts 5, 9, 7, 1); EASE over the first three, B written out. */
function model(): RankerModel {
  // B rows over model items [10, 20, 30] (positions 0, 1, 2): row i lists (col, value).
  // 10 -> 20: 0.5, 10 -> 30: 0.25;  20 -> 10: 0.1, 20 -> 30: 0.6;  30 -> 10: -0.2, 30 -> 20: 0.3
  return {
    model: "ease",
    itemIds: Int32Array.of(10, 20, 30, 40),
    trainCounts: Int32Array.of(5, 9, 7, 1),
    modelItems: Int32Array.of(0, 1, 2),
    rows: {
      offsets: Int32Array.of(0, 2, 4, 6),
      cols: Int32Array.of(1, 2, 0, 2, 0, 1),
      values: Float32Array.of(0.5, 0.25, 0.1, 0.6, -0.2, 0.3),
    },
  };
}

describe("Ranker", () => {
  it("scores a user by the sum of their items' rows and excludes what they rated", () => {
    const r = new Ranker(model());
    // User rated 10: scores 20 -> 0.5, 30 -> 0.25 (10 itself excluded; 40 is outside the model).
    const one = r.recommend(Int32Array.of(10), 5);
    expect([...one.items]).toEqual([20, 30]);
    expect([...one.scores]).toEqual([0.5, 0.25]);
    // Rated 10 and 30: 20 -> 0.5 + 0.3 = 0.8; reasons: 10 (0.5) before 30 (0.3).
    const two = r.recommend(Int32Array.of(30, 10), 5);
    expect([...two.items]).toEqual([20]);
    expect(two.scores[0]).toBeCloseTo(0.8, 6);
    expect(two.reasons?.[0].map((x) => x.movieId)).toEqual([10, 30]);
    expect(two.reasons?.[0][0].contribution).toBeCloseTo(0.5, 6);
  });

  it("keeps seen items on request and applies a floor on the training count", () => {
    const r = new Ranker(model());
    // Rated 10, seen kept: 20 (0.5), 30 (0.25), 10 (0: its own B entry is not kept).
    expect([...r.recommend(Int32Array.of(10), 5, { excludeSeen: false }).items]).toEqual([20, 30, 10]);
    expect([...r.recommend(Int32Array.of(10), 5, { minRatings: 8 }).items]).toEqual([20]);
  });

  it("answers a user with no model item by popularity, as the popularity model does", () => {
    const ease = new Ranker(model());
    const popularity = new Ranker({ ...model(), model: "popularity" });
    const cold = ease.recommend(Int32Array.of(40, 999), 3);
    expect([...cold.items]).toEqual([20, 30, 10]);
    expect(cold.reasons).toBeUndefined();
    expect([...popularity.recommend(Int32Array.of(20), 3).items]).toEqual([30, 10, 40]);
    expect([...popularity.recommend(Int32Array.of(20), 3).scores]).toEqual([7, 5, 1]);
  });

  it("gives every user of a batch the list a single call gives", () => {
    const r = new Ranker(model());
    const positions = [[0], [0, 2], [], [3], [1, 2]];
    const offsets = Int32Array.from([0, ...positions.map((_, u) => positions.slice(0, u + 1).flat().length)]);
    const batch = r.recommendAll({ userIds: Int32Array.of(1, 2, 3, 4, 5), offsets, items: Int32Array.from(positions.flat()) }, 2);
    positions.forEach((p, u) => {
      const single = r.recommend(
        Int32Array.from(p, (x) => r.itemIds[x]),
        2,
      );
      expect([...batch.items.subarray(u * 2, u * 2 + batch.counts[u])]).toEqual([...single.items]);
    });
  });
});

describe("Ranker.recommendAllScaled", () => {
  it("gives, per β, the lists of the model whose columns the popularity penalty scaled", async () => {
    const { penalisePopularity, popularityScale } = await import("./fit.js");
    const m = model();
    const { modelItems, rows: fitted } = m as Required<RankerModel>;
    const r = new Ranker(m);
    const positions = [[0], [0, 2], [], [3], [1, 2], [2]];
    const offsets = Int32Array.from([0, ...positions.map((_, u) => positions.slice(0, u + 1).flat().length)]);
    const h = { userIds: Int32Array.of(1, 2, 3, 4, 5, 6), offsets, items: Int32Array.from(positions.flat()) };
    const betas = [0, 0.5, 3];
    const lists = r.recommendAllScaled(
      h,
      2,
      betas.map((b) => popularityScale(modelItems, m.trainCounts, b)),
    );
    const orders = betas.map((beta, s) => {
      const rows = { ...fitted, values: fitted.values.slice() };
      penalisePopularity(rows, modelItems, m.trainCounts, beta);
      const penalised = new Ranker({ ...m, rows }).recommendAll(h, 2);
      expect([...lists[s].items]).toEqual([...penalised.items]);
      expect([...lists[s].counts]).toEqual([...penalised.counts]);
      for (let i = 0; i < penalised.scores.length; i++) expect(lists[s].scores[i]).toBeCloseTo(penalised.scores[i], 6);
      return [...lists[s].items].join();
    });
    // The penalty changes the lists: for user 1 (rated 10), at β = 3 item 20 (0.5, 9 ratings) falls behind 30 (0.25, 7).
    expect(new Set(orders).size).toBeGreaterThan(1);
  });
});

describe("Ranker.histories", () => {
  it("groups training rows by user as item positions, leaving out movies it does not know", () => {
    const r = new Ranker(model());
    const h = r.histories(Int32Array.of(7, 3, 7, 3, 7), Int32Array.of(30, 20, 999, 10, 10));
    expect([...h.userIds]).toEqual([3, 7]);
    expect([...h.offsets]).toEqual([0, 2, 4]);
    // User 3: movies 20, 10 -> positions 0, 1; user 7: 30, 10 (999 unknown) -> 0, 2.
    expect([...h.items]).toEqual([0, 1, 0, 2]);
  });
});

describe("recommendAllParallel", () => {
  it("gives the lists recommendAll gives on one thread, in the same order", async () => {
    const { recommendAllParallel } = await import("./parallel.js");
    const r = new Ranker(model());
    const positions = [[0], [0, 2], [], [3], [1, 2], [2]];
    const offsets = Int32Array.from([0, ...positions.map((_, u) => positions.slice(0, u + 1).flat().length)]);
    const h = { userIds: Int32Array.of(1, 2, 3, 4, 5, 6), offsets, items: Int32Array.from(positions.flat()) };
    const one = r.recommendAll(h, 2);
    const two = await recommendAllParallel(r.source, h, 2, {}, 2);
    expect([...two.items]).toEqual([...one.items]);
    expect([...two.counts]).toEqual([...one.counts]);
    expect([...two.scores]).toEqual([...one.scores]);
  });
});
