/** binarySearch and positionLookup over sorted Int32Array ids: every present id found, absent ones and edges -1. */
import { describe, expect, it } from "vitest";
import { binarySearch, positionLookup } from "./index.js";

describe("binarySearch", () => {
  it("finds every id of a sorted array and refuses the gaps and the ends", () => {
    const ids = Int32Array.from([-5, 0, 3, 7, 100, 2_147_483_647]);
    ids.forEach((id, i) => expect(binarySearch(ids, id)).toBe(i));
    for (const missing of [-6, 1, 8, 99, -2_147_483_648]) expect(binarySearch(ids, missing)).toBe(-1);
    expect(binarySearch(new Int32Array(0), 1)).toBe(-1);
  });
});

describe("positionLookup", () => {
  it("answers as binarySearch does, on dense ids (a table) and on sparse ones (a search)", () => {
    const dense = Int32Array.from([1, 2, 5, 9, 10, 4000]);
    const sparse = Int32Array.from([-5, 0, 3, 7, 100, 2_147_483_647]);
    for (const ids of [dense, sparse]) {
      const at = positionLookup(ids);
      expect(positionLookup(ids)).toBe(at);
      for (const id of [...ids, -6, -1, 4, 8, 11, 3999, 4001, 1.5, 2_147_483_646]) expect(at(id), `id ${id}`).toBe(binarySearch(ids, id));
    }
    expect(positionLookup(new Int32Array(0))(1)).toBe(-1);
  });
});
