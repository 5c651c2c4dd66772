#!/usr/bin/env node
/**
 * Micro-benchmark of the ALS per-row hot path (run after `pnpm build`):
 *   node tools/bench/als/kernel.mjs [rank]
 * Compares, for MovieLens-like rows (~115 ratings per row, rank 12 by default):
 *   - accumulating the normal equations: generic typed-array loop vs the rank-generated JS kernel
 *     vs the rank-generated WebAssembly SIMD kernel (f64x2, data in a shared WASM memory);
 *   - solving the rank x rank system: @ms/als's hand-written Cholesky (JS, and generated WASM with
 *     every entry in a local) vs ml-matrix (CholeskyDecomposition and solve), including the cost
 *     of building ml-matrix's objects.
 * Prints a table with ns per row and ratios against the generic / ml-matrix baselines.
 */
import { createRequire } from "node:module";
import { kernels, wasmKernels } from "@ms/als";

const require = createRequire(new URL("../../../packages/als/package.json", import.meta.url));
const { Matrix, CholeskyDecomposition, solve } = require("ml-matrix");

const rank = Number(process.argv[2] ?? 12);
const rowsOther = 27_000;
const perRow = 115;
const rows = 20_000;

let s = 12345;
const next = () => {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  return s / 4294967296;
};
// The same data inside a shared WASM memory, as prepareProblem lays it out for the WASM kernel.
const arena = wasmKernels.createWasmArena(4 * (rowsOther * rank + 2 * rows * perRow), 3);
const Y = arena.float32(rowsOther * rank);
const col = arena.int32(rows * perRow);
const val = arena.float32(rows * perRow);
for (let i = 0; i < Y.length; i++) Y[i] = next() * 0.6 - 0.3;
for (let i = 0; i < col.length; i++) col[i] = Math.floor(next() * rowsOther);
for (let i = 0; i < val.length; i++) val[i] = 0.5 + Math.floor(next() * 10) / 2;

function time(label, fn, reps = 3) {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return { label, nsPerRow: (best * 1e6) / rows };
}

const G = new Float64Array(rank * rank);
const b = new Float64Array(rank);
const generic = kernels.accumulateGeneric(rank);
const generated = kernels.accumulateGenerated(rank);
const accGeneric = time("accumulate: generic loop", () => {
  for (let r = 0; r < rows; r++) generic(col, val, Y, r * perRow, (r + 1) * perRow, G, b);
});
const accGenerated = time("accumulate: generated JS (rank-specialised)", () => {
  for (let r = 0; r < rows; r++) generated(col, val, Y, r * perRow, (r + 1) * perRow, G, b);
});
const ws = wasmKernels.wasmScratch(arena.memory, rank);
const { accumulate: wasm, solve: wasmSolve } = wasmKernels.wasmKernelsFor(rank, arena.memory);
const accWasm = time("accumulate: generated WASM SIMD f64x2", () => {
  for (let r = 0; r < rows; r++) wasm(col, val, Y, r * perRow, (r + 1) * perRow, ws.G, ws.b);
});
let wasmSameBits = true;
for (let r = 0; r < 200; r++) {
  generated(col, val, Y, r * perRow, (r + 1) * perRow, G, b);
  wasm(col, val, Y, r * perRow, (r + 1) * perRow, ws.G, ws.b);
  for (let i = 0; i < rank * rank; i++) if (!Object.is(G[i], ws.G[i])) wasmSameBits = false;
  for (let i = 0; i < rank; i++) if (!Object.is(b[i], ws.b[i])) wasmSameBits = false;
}

// Systems to solve: the real normal equations of the first rows, plus the ALS-WR diagonal.
const systems = [];
for (let r = 0; r < 200; r++) {
  generated(col, val, Y, r * perRow, (r + 1) * perRow, G, b);
  const A = G.slice();
  for (let i = 0; i < rank; i++) A[i * rank + i] += 0.1 * perRow;
  systems.push({ A, b: b.slice() });
}
const L = new Float64Array(rank * rank);
const x = new Float64Array(rank);
let checksum = 0;
const cholHand = time("solve: hand-written Cholesky (Float64Array, no allocation)", () => {
  for (let r = 0; r < rows; r++) {
    const sys = systems[r % systems.length];
    L.set(sys.A);
    kernels.choleskySolve(L, sys.b, x, rank);
    checksum += x[0];
  }
});
const cholWasm = time("solve: generated WASM Cholesky (same bits as the JS one)", () => {
  for (let r = 0; r < rows; r++) {
    const sys = systems[r % systems.length];
    ws.G.set(sys.A);
    ws.b.set(sys.b);
    wasmSolve(ws.G, ws.b, 0, ws.x);
    checksum += ws.x[0];
  }
});
const toRows = (A) => Array.from({ length: rank }, (_, i) => Array.from(A.subarray(i * rank, i * rank + rank)));
const cholMl = time("solve: ml-matrix CholeskyDecomposition", () => {
  for (let r = 0; r < rows; r++) {
    const sys = systems[r % systems.length];
    const sol = new CholeskyDecomposition(new Matrix(toRows(sys.A))).solve(Matrix.columnVector(Array.from(sys.b)));
    checksum += sol.get(0, 0);
  }
});
const solveMl = time("solve: ml-matrix solve (LU)", () => {
  for (let r = 0; r < rows; r++) {
    const sys = systems[r % systems.length];
    const sol = solve(new Matrix(toRows(sys.A)), Matrix.columnVector(Array.from(sys.b)));
    checksum += sol.get(0, 0);
  }
});

// Agreement of the two Cholesky solvers on every system.
let maxDiff = 0;
for (const sys of systems) {
  L.set(sys.A);
  kernels.choleskySolve(L, sys.b, x, rank);
  const ref = new CholeskyDecomposition(new Matrix(toRows(sys.A))).solve(Matrix.columnVector(Array.from(sys.b))).to1DArray();
  for (let i = 0; i < rank; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i] - x[i]) / Math.max(1e-12, Math.abs(ref[i])));
}

const rowsOut = [
  [accGeneric, accGeneric],
  [accGenerated, accGeneric],
  [accWasm, accGeneric],
  [cholMl, cholMl],
  [solveMl, cholMl],
  [cholHand, cholMl],
  [cholWasm, cholMl],
];
console.log(`ALS per-row kernel, rank ${rank}, ${perRow} ratings per row, ${rows} rows (best of 3)\n`);
const w = Math.max(...rowsOut.map(([r]) => r.label.length));
console.log(`${"variant".padEnd(w)}  ${"ns/row".padStart(9)}  ${"ns/rating".padStart(9)}  speed-up vs baseline`);
for (const [r, base] of rowsOut) {
  const perRating = r.label.startsWith("accumulate") ? (r.nsPerRow / perRow).toFixed(1) : "";
  console.log(
    `${r.label.padEnd(w)}  ${r.nsPerRow.toFixed(0).padStart(9)}  ${perRating.padStart(9)}  ${(base.nsPerRow / r.nsPerRow).toFixed(2)}x`,
  );
}
console.log(`\nWASM vs generated JS accumulation: ${wasmSameBits ? "identical bits" : "BITS DIFFER"} on 200 rows`);
console.log(`\nhand Cholesky vs ml-matrix Cholesky: max relative difference ${maxDiff.toExponential(2)} (checksum ${checksum.toFixed(3)})`);
