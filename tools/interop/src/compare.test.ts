/**
 * The bit-for-bit comparison the interop tests rely on: it must see a one-bit change, a length
 * change, and tell -0 from 0 (the ratings and factors must be the same bits, not just equal).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { firstDifference } from "./compare.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "ms-interop-compare-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dump(name: string, data: Int32Array | Float32Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return file;
}

describe("firstDifference", () => {
  it("is -1 for the same values and the index of the first change otherwise", () => {
    const ids = Int32Array.from([1, 7, 2_000_000_000, -3]);
    expect(firstDifference(ids, dump("same.bin", ids))).toBe(-1);
    expect(firstDifference(ids, dump("changed.bin", Int32Array.from([1, 7, 2_000_000_001, -3])))).toBe(2);
  });

  it("sees a length difference and a one-ulp or sign-of-zero float change", () => {
    const f = Float32Array.from([0.5, 3.25, 0]);
    expect(firstDifference(f, dump("short.bin", f.subarray(0, 2)))).toBe(2);
    const ulp = new Float32Array(f);
    new Uint32Array(ulp.buffer)[1] += 1;
    expect(firstDifference(f, dump("ulp.bin", ulp))).toBe(1);
    expect(firstDifference(f, dump("negzero.bin", Float32Array.from([0.5, 3.25, -0])))).toBe(2);
  });
});
