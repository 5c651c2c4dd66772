/**
 * The WASM kernels against the JS ones: the SIMD accumulation against the generic loop and the
 * solve against `choleskySolve` (identical bits, odd and even ranks, odd and even row lengths, a
 * clamped pivot), a whole fit against the JS kernel, and the arena/scratch layout.
 */
import { describe, expect, it } from "vitest";
import { accumulateGeneric, choleskySolve, makeScratch } from "./kernel.js";
import { fitProblem, prepareProblem } from "./model.js";
import { inProcessRunner } from "./pool.js";
import { accumulateWasm, createWasmArena, MAX_WASM_RANK, wasmKernelsFor, wasmScratch, wasmSimdAvailable } from "./wasm.js";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe("accumulateWasm", () => {
  it("is available on this runtime (Node 20 has WebAssembly SIMD)", () => {
    expect(wasmSimdAvailable()).toBe(true);
  });

  it.each([1, 2, 3, 12, 17, MAX_WASM_RANK])("gives the generic loop's exact bits at rank %i", (k) => {
    const next = lcg(300 + k);
    const rows = 50;
    const nnz = 400;
    const arena = createWasmArena(4 * (rows * k + 2 * nnz), 3);
    expect(arena).toBeDefined();
    if (!arena) return;
    const Y = arena.float32(rows * k);
    const col = arena.int32(nnz);
    const val = arena.float32(nnz);
    for (let i = 0; i < Y.length; i++) Y[i] = next() * 2 - 1;
    for (let i = 0; i < nnz; i++) col[i] = Math.floor(next() * rows);
    for (let i = 0; i < nnz; i++) val[i] = 0.5 + Math.floor(next() * 10) / 2;
    const { G, b } = wasmScratch(arena.memory, k);
    const wasm = accumulateWasm(k, arena.memory);
    const generic = accumulateGeneric(k);
    const G1 = new Float64Array(k * k);
    const b1 = new Float64Array(k);
    // Odd and even lengths, an empty row, and a row of one rating.
    for (const [start, end] of [
      [17, 391],
      [0, 400],
      [5, 5],
      [9, 10],
    ]) {
      G.fill(7);
      b.fill(7);
      generic(col, val, Y, start, end, G1, b1);
      wasm(col, val, Y, start, end, G, b);
      expect(Array.from(G)).toEqual(Array.from(G1));
      expect(Array.from(b)).toEqual(Array.from(b1));
    }
  });

  it("gives each caller its own scratch region beyond the arena", () => {
    const arena = createWasmArena(1000, 1);
    if (!arena) throw new Error("no arena");
    const used = arena.float32(250);
    const s1 = wasmScratch(arena.memory, 12);
    const s2 = wasmScratch(arena.memory, 12);
    expect(s1.G.byteOffset).toBeGreaterThanOrEqual(used.byteOffset + used.byteLength);
    expect(s2.G.byteOffset).toBeGreaterThanOrEqual(s1.b.byteOffset + s1.b.byteLength);
  });
});

describe("wasm solve", () => {
  it.each([1, 2, 5, 12, 17, MAX_WASM_RANK])("gives choleskySolve's exact bits at rank %i", (k) => {
    const next = lcg(500 + k);
    const arena = createWasmArena(64, 1);
    if (!arena) throw new Error("no arena");
    const { G, b, x } = wasmScratch(arena.memory, k);
    const { solve } = wasmKernelsFor(k, arena.memory);
    const L = new Float64Array(k * k);
    const xJs = new Float64Array(k);
    for (let trial = 0; trial < 20; trial++) {
      // G = A A' (rank-deficient for the first trials, so reg 0 hits the pivot clamp).
      const inner = trial < 3 ? Math.max(1, k - 2) : k + 3;
      const A = Float64Array.from({ length: k * inner }, () => next() * 2 - 1);
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) {
          let s = 0;
          for (let m = 0; m < inner; m++) s += A[i * inner + m] * A[j * inner + m];
          G[i * k + j] = s;
        }
      }
      for (let i = 0; i < k; i++) b[i] = next() * 2 - 1;
      const reg = trial < 3 ? 0 : next() * 5;
      L.set(G);
      for (let i = 0; i < k; i++) L[i * k + i] += reg;
      choleskySolve(L, b, xJs, k);
      solve(G, b, reg, x);
      expect(Array.from(x)).toEqual(Array.from(xJs));
    }
  });
});

describe("a fit in a WASM arena", () => {
  it.each([false, true])("gives the JS kernel's exact factors and losses (nonnegative: %s)", async (nonnegative) => {
    const next = lcg(77);
    const n = 3000;
    const userIds = Int32Array.from({ length: n }, () => Math.floor(next() * 120));
    const movieIds = Int32Array.from({ length: n }, () => Math.floor(next() * 90));
    const ratings = Float32Array.from({ length: n }, () => 0.5 + Math.floor(next() * 10) / 2);
    const mask = Uint8Array.from({ length: n }, () => (next() < 0.8 ? 1 : 0));
    const config = { rank: 7, maxIter: 3, regParam: 0.1, nonnegative, seed: 4 };
    const viaWasm = prepareProblem({ userIds, movieIds, ratings }, mask, config);
    const viaJs = prepareProblem({ userIds, movieIds, ratings }, mask, config);
    expect(viaWasm.state.memory).toBeDefined();
    const lossWasm = await fitProblem(viaWasm, 3, inProcessRunner(viaWasm.state));
    const lossJs = await fitProblem(viaJs, 3, inProcessRunner(viaJs.state, makeScratch(7)));
    expect(lossWasm).toEqual(lossJs);
    expect(Buffer.from(viaWasm.state.userFactors.slice().buffer).equals(Buffer.from(viaJs.state.userFactors.slice().buffer))).toBe(true);
    expect(Buffer.from(viaWasm.state.itemFactors.slice().buffer).equals(Buffer.from(viaJs.state.itemFactors.slice().buffer))).toBe(true);
  });
});
