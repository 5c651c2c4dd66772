/** Grouping and id lookups, on small ids (the dense tables) and on ids past them (the Map fallback). */
import { describe, expect, it } from "vitest";
import { groupByUser, positionsOf, sampleUsers, trainingItems } from "./data.js";

describe("data", () => {
  for (const base of [0, 1 << 26, -5]) {
    it(`counts, finds and groups ids from ${base}`, () => {
      const movies = Int32Array.from([30, 10, 30, 20, 10, 30], (x) => x + base);
      const users = Int32Array.from([2, 1, 1, 2, 9, 2], (x) => x + base);
      const mask = Uint8Array.of(1, 1, 0, 1, 1, 1);
      const items = trainingItems(movies, mask);
      expect([...items.itemIds]).toEqual([10, 20, 30].map((x) => x + base));
      expect([...items.trainCounts]).toEqual([2, 1, 2]);
      expect([
        ...positionsOf(
          items.itemIds,
          Int32Array.from([20, 99, 10], (x) => x + base),
        ),
      ]).toEqual([1, -1, 0]);
      const h = groupByUser(
        users,
        (i) => mask[i] === 1,
        (i) => movies[i] - base,
      );
      expect([...h.userIds]).toEqual([1, 2, 9].map((x) => x + base));
      expect([...h.offsets]).toEqual([0, 1, 4, 5]);
      expect([...h.items]).toEqual([10, 20, 30, 30, 10]);
    });
  }

  it("samples the same users whatever their order, every user under the cap", () => {
    const hash = (id: number) => ((id * 2654435761) >>> 0) / 2 ** 32;
    const a = sampleUsers(Int32Array.of(1, 2, 3, 4, 5, 6), 3, hash);
    expect(a.length).toBe(3);
    expect([...sampleUsers(Int32Array.of(1, 2, 3), 3, hash)]).toEqual([1, 2, 3]);
    expect([...a]).toEqual([...a].sort((x, y) => x - y));
  });
});
