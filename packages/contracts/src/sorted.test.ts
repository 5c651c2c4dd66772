/** binarySearch over sorted Int32Array ids: every present id found, absent ones and edges -1. */
import { describe, expect, it } from "vitest";
import { binarySearch } from "./index.js";

describe("binarySearch", () => {
  it("finds every id of a sorted array and refuses the gaps and the ends", () => {
    const ids = Int32Array.from([-5, 0, 3, 7, 100, 2_147_483_647]);
    ids.forEach((id, i) => expect(binarySearch(ids, id)).toBe(i));
    for (const missing of [-6, 1, 8, 99, -2_147_483_648]) expect(binarySearch(ids, missing)).toBe(-1);
    expect(binarySearch(new Int32Array(0), 1)).toBe(-1);
  });
});
