/**
 * Bit-for-bit comparison of a typed array with a raw little-endian dump written by Python, giving
 * the first differing element so a failure says where, not just that.
 */
import { readFileSync } from "node:fs";

type Typed = Int32Array | Float32Array;

/** The index of the first element that differs, or -1; a length difference counts at the shorter end. */
export function firstDifference(ours: Typed, dumpFile: string): number {
  const bytes = readFileSync(dumpFile);
  const theirs =
    ours instanceof Int32Array
      ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const n = Math.min(ours.length, theirs.length);
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(theirs.buffer, theirs.byteOffset, theirs.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return ours.length === theirs.length ? -1 : n;
}
