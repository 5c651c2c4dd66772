/**
 * `TopK` against the obvious reference (sort every eligible candidate by score descending, then
 * id ascending, take k): random scores with many ties, skip masks, k larger than the candidates,
 * and a selector reused across calls.
 */
import { describe, expect, it } from "vitest";
import { mulberry32 } from "@ms/contracts";
import { TopK } from "./topk.js";

function reference(scores: Float64Array, ids: Int32Array, skip: Uint8Array | undefined, k: number): number[] {
  return Array.from(scores.keys())
    .filter((i) => !skip?.[i])
    .sort((a, b) => scores[b] - scores[a] || ids[a] - ids[b])
    .slice(0, k);
}

describe("TopK", () => {
  it("selects the k best, best first, ties to the smaller id, skipping masked candidates", () => {
    const next = mulberry32(7);
    for (const [n, k] of [
      [1, 1],
      [5, 10],
      [100, 10],
      [1000, 1],
      [2000, 50],
    ]) {
      const selector = new TopK(k);
      const out = new Int32Array(k);
      for (let trial = 0; trial < 5; trial++) {
        // Scores from a handful of values: ties everywhere.
        const scores = Float64Array.from({ length: n }, () => Math.floor(next() * 7) / 2);
        const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919) % 100_003);
        const skip = trial % 2 ? Uint8Array.from({ length: n }, () => (next() < 0.3 ? 1 : 0)) : undefined;
        const count = selector.select(scores, ids, skip, out);
        expect(Array.from(out.subarray(0, count)), `n=${n} k=${k} trial=${trial}`).toEqual(reference(scores, ids, skip, k));
      }
    }
  });

  it("returns 0 when every candidate is skipped", () => {
    const out = new Int32Array(3);
    expect(new TopK(3).select(Float64Array.of(1, 2), Int32Array.of(1, 2), Uint8Array.of(1, 1), out)).toBe(0);
  });
});
