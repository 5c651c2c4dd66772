#!/usr/bin/env node
/**
 * Micro-benchmark of the ALS per-row hot path (run after `pnpm build`):
 *   node tools/bench/als/kernel.mjs [rank]
 * Compares, for MovieLens-like rows (~115 ratings per row, rank 12 by default):
 *   - accumulating the normal equations: generic typed-array loop vs the rank-generated kernel;
 *   - solving the rank x rank system: @ms/als's hand-written Cholesky vs ml-matrix
 *     (CholeskyDecomposition and solve), including the cost of building ml-matrix's objects.
 * Prints a table with ns per row and ratios against the generic / ml-matrix baselines.
 */
import { createRequire } from "node:module";
import { kernels } from "../../../packages/als/dist/index.js";

const require = createRequire(new URL("../../../packages/als/package.json", import.meta.url));
const { Matrix, CholeskyDecomposition, solve } = require("ml-matrix");

const rank = Number(process.argv[2] ?? 12);
const rowsOther = 27_000;
const perRow = 115;
const rows = 20_000;

let s = 12345;
const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
const Y = Float32Array.from({ length: rowsOther * rank }, () => next() * 0.6 - 0.3);
const col = Int32Array.from({ length: rows * perRow }, () => Math.floor(next() * rowsOther));
const val = Float32Array.from({ length: rows * perRow }, () => 0.5 + Math.floor(next() * 10) / 2);

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
const accGenerated = time("accumulate: generated (rank-specialised)", () => {
  for (let r = 0; r < rows; r++) generated(col, val, Y, r * perRow, (r + 1) * perRow, G, b);
});

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
  [cholMl, cholMl],
  [solveMl, cholMl],
  [cholHand, cholMl],
];
console.log(`ALS per-row kernel, rank ${rank}, ${perRow} ratings per row, ${rows} rows (best of 3)\n`);
const w = Math.max(...rowsOut.map(([r]) => r.label.length));
console.log(`${"variant".padEnd(w)}  ${"ns/row".padStart(9)}  speed-up vs baseline`);
for (const [r, base] of rowsOut) console.log(`${r.label.padEnd(w)}  ${r.nsPerRow.toFixed(0).padStart(9)}  ${(base.nsPerRow / r.nsPerRow).toFixed(2)}x`);
console.log(`\nhand Cholesky vs ml-matrix Cholesky: max relative difference ${maxDiff.toExponential(2)} (checksum ${checksum.toFixed(3)})`);
