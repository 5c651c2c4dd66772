/**
 * The ALS-WR hot path: for each row of one side (a user, or a movie), accumulate the normal
 * equations over that row's ratings from the other side's factors, add Spark's ALS-WR
 * regularisation (lambda * number of ratings on the diagonal) and solve by Cholesky.
 *
 * Every row is solved independently from the other side's factors of the previous half-sweep,
 * so the result does not depend on how rows are split between threads. The accumulation for a
 * given rank is generated as straight-line code with every accumulator in a local variable: V8
 * keeps them in registers or on the stack instead of loading and storing a typed array slot per
 * multiply-add, which measured several times faster than the generic loop (see
 * tools/bench/als/kernel.mjs). Both versions add the same products in the same order, so they
 * give identical bits. When the state lives in a WASM memory, threads use the WebAssembly SIMD
 * version of both the accumulation and the solve instead (wasm.ts; same bits again, faster).
 */
import { SIDE_USERS, type Accumulate, type AlsState, type Side } from "./kernel-types.js";
import { MAX_WASM_RANK, wasmKernelsFor, wasmScratch } from "./wasm.js";

export { SIDE_ITEMS, SIDE_USERS, type Accumulate, type AlsState, type Csr, type Side } from "./kernel-types.js";

/** The generic accumulation loop; reference for the generated one and used for large ranks. */
export function accumulateGeneric(rank: number): Accumulate {
  const y = new Float64Array(rank);
  const z = new Float64Array(rank);
  return (col, val, Y, start, end, G, b) => {
    G.fill(0);
    b.fill(0);
    let p = start;
    for (; p + 1 < end; p += 2) {
      const j = col[p] * rank;
      const q = col[p + 1] * rank;
      const r = val[p];
      const s = val[p + 1];
      for (let a = 0; a < rank; a++) {
        y[a] = Y[j + a];
        z[a] = Y[q + a];
      }
      for (let a = 0; a < rank; a++) {
        const ya = y[a];
        const za = z[a];
        b[a] += r * ya + s * za;
        const base = a * rank;
        for (let c = a; c < rank; c++) G[base + c] += ya * y[c] + za * z[c];
      }
    }
    if (p < end) {
      const j = col[p] * rank;
      const r = val[p];
      for (let a = 0; a < rank; a++) y[a] = Y[j + a];
      for (let a = 0; a < rank; a++) {
        const ya = y[a];
        b[a] += r * ya;
        const base = a * rank;
        for (let c = a; c < rank; c++) G[base + c] += ya * y[c];
      }
    }
    for (let a = 0; a < rank; a++) for (let c = a + 1; c < rank; c++) G[c * rank + a] = G[a * rank + c];
  };
}

/** Above this rank the generated function gets too large to pay off. */
export const MAX_GENERATED_RANK = 32;

const generated = new Map<number, Accumulate>();

/** The rank-specialised accumulation (straight-line code, accumulators in locals). */
export function accumulateGenerated(rank: number): Accumulate {
  const cached = generated.get(rank);
  if (cached) return cached;
  const lines: string[] = [];
  const acc: string[] = [];
  for (let a = 0; a < rank; a++) acc.push(`b${a} = 0.0`);
  for (let a = 0; a < rank; a++) for (let c = a; c < rank; c++) acc.push(`g${a}_${c} = 0.0`);
  lines.push(`let ${acc.join(", ")};`);
  // Two ratings per trip: accumulators that spill to the stack are loaded and stored half as
  // often. The pair is summed first, then added, in the same order as the generic loop.
  lines.push("let p = start;");
  lines.push("for (; p + 1 < end; p += 2) {");
  lines.push(`  const j = col[p] * ${rank}; const r = val[p]; const q = col[p + 1] * ${rank}; const s = val[p + 1];`);
  for (let a = 0; a < rank; a++) lines.push(`  const y${a} = Y[j + ${a}]; const z${a} = Y[q + ${a}];`);
  for (let a = 0; a < rank; a++) lines.push(`  b${a} += r * y${a} + s * z${a};`);
  for (let a = 0; a < rank; a++) for (let c = a; c < rank; c++) lines.push(`  g${a}_${c} += y${a} * y${c} + z${a} * z${c};`);
  lines.push("}");
  lines.push("if (p < end) {");
  lines.push(`  const j = col[p] * ${rank}; const r = val[p];`);
  for (let a = 0; a < rank; a++) lines.push(`  const y${a} = Y[j + ${a}];`);
  for (let a = 0; a < rank; a++) lines.push(`  b${a} += r * y${a};`);
  for (let a = 0; a < rank; a++) for (let c = a; c < rank; c++) lines.push(`  g${a}_${c} += y${a} * y${c};`);
  lines.push("}");
  for (let a = 0; a < rank; a++) lines.push(`b[${a}] = b${a};`);
  for (let a = 0; a < rank; a++) {
    for (let c = a; c < rank; c++) {
      lines.push(`G[${a * rank + c}] = g${a}_${c};`);
      if (c !== a) lines.push(`G[${c * rank + a}] = g${a}_${c};`);
    }
  }
  const fn = new Function("col", "val", "Y", "start", "end", "G", "b", lines.join("\n")) as Accumulate;
  generated.set(rank, fn);
  return fn;
}

export function accumulatorFor(rank: number): Accumulate {
  return rank <= MAX_GENERATED_RANK ? accumulateGenerated(rank) : accumulateGeneric(rank);
}

/**
 * In-place Cholesky of the symmetric positive definite `L` (row-major, lower triangle used),
 * then solves L L^T x = b into `x`. A non-positive pivot (only possible with reg_param 0 and
 * collinear factors) is clamped to a tiny positive value rather than producing NaN.
 */
export function choleskySolve(L: Float64Array, b: Float64Array, x: Float64Array, rank: number): void {
  for (let i = 0; i < rank; i++) {
    const ri = i * rank;
    for (let j = 0; j <= i; j++) {
      const rj = j * rank;
      let s = L[ri + j];
      for (let m = 0; m < j; m++) s -= L[ri + m] * L[rj + m];
      // biome-ignore lint/complexity/useMathMinMax: a NaN pivot clamps to the floor, as the WASM kernel's select does; Math.max would propagate it
      if (i === j) L[ri + i] = Math.sqrt(s > 1e-300 ? s : 1e-300);
      else L[ri + j] = s / L[rj + j];
    }
  }
  for (let i = 0; i < rank; i++) {
    const ri = i * rank;
    let s = b[i];
    for (let m = 0; m < i; m++) s -= L[ri + m] * x[m];
    x[i] = s / L[ri + i];
  }
  for (let i = rank - 1; i >= 0; i--) {
    let s = x[i];
    for (let m = i + 1; m < rank; m++) s -= L[m * rank + i] * x[m];
    x[i] = s / L[i * rank + i];
  }
}

const NNLS_MAX_PASSES = 200;

/**
 * Non-negative least squares on the normal equations, min 0.5 x'Mx - b'x with x >= 0, by
 * projected coordinate descent started from the clipped unconstrained solution (already in
 * `x`). Each coordinate step is an exact minimisation, so it converges for positive definite M;
 * it stops when no coordinate moves by more than 1e-9 relative to the largest.
 */
export function nnlsRefine(M: Float64Array, b: Float64Array, x: Float64Array, rank: number): void {
  for (let i = 0; i < rank; i++) if (x[i] < 0) x[i] = 0;
  for (let pass = 0; pass < NNLS_MAX_PASSES; pass++) {
    let maxStep = 0;
    let maxX = 0;
    for (let i = 0; i < rank; i++) {
      const ri = i * rank;
      let g = -b[i];
      for (let m = 0; m < rank; m++) g += M[ri + m] * x[m];
      const next = Math.max(0, x[i] - g / M[ri + i]);
      const step = Math.abs(next - x[i]);
      if (step > maxStep) maxStep = step;
      x[i] = next;
      if (next > maxX) maxX = next;
    }
    if (maxStep <= 1e-9 * (maxX > 0 ? maxX : 1)) break;
  }
}

/** Per-thread scratch: allocated once, reused for every row. */
export interface Scratch {
  G: Float64Array;
  L: Float64Array;
  b: Float64Array;
  x: Float64Array;
  accumulate: Accumulate;
  /** (G + reg I) x = b; when absent, `choleskySolve` on a copy of G in L (same bits). */
  solve?: (G: Float64Array, b: Float64Array, reg: number, x: Float64Array) => void;
  /**
   * Solve, store at out[base..] and put [|x|^2, x.b, x'Gx] of the stored x in `terms`, in one
   * call (the WASM kernel); when absent, the JS tail of `solveRows` does it (same bits).
   */
  finish?: (G: Float64Array, b: Float64Array, reg: number, out: Float32Array, base: number, terms: Float64Array) => void;
  terms?: Float64Array;
}

export function makeScratch(rank: number, accumulate: Accumulate = accumulatorFor(rank)): Scratch {
  return {
    G: new Float64Array(rank * rank),
    L: new Float64Array(rank * rank),
    b: new Float64Array(rank),
    x: new Float64Array(rank),
    accumulate,
  };
}

/**
 * The scratch one thread uses for `state`: the WASM kernel when the state lives in a WASM
 * memory (its G and b then live there too, in this thread's own region), else the JS kernel.
 */
export function scratchFor(state: AlsState): Scratch {
  const { rank, memory } = state;
  if (!memory || rank > MAX_WASM_RANK) return makeScratch(rank);
  const { G, b, x, terms } = wasmScratch(memory, rank);
  const { accumulate, solve, finish } = wasmKernelsFor(rank, memory);
  return { G, L: new Float64Array(rank * rank), b, x, accumulate, solve, finish, terms };
}

/**
 * Solves rows [start, end) of one side and records each row's objective terms: for users the
 * squared error sum_j (r - x.y_j)^2 = sum r^2 - 2 x.b + x'Gx (from the normal equations, no
 * second pass over the ratings) plus lambda n |x|^2; for movies lambda n |y|^2.
 */
export function solveRows(state: AlsState, side: Side, start: number, end: number, s: Scratch): void {
  const { rank, regParam, nonnegative } = state;
  const csr = side === SIDE_USERS ? state.byUser : state.byItem;
  const other = side === SIDE_USERS ? state.itemFactors : state.userFactors;
  const out = side === SIDE_USERS ? state.userFactors : state.itemFactors;
  const loss = side === SIDE_USERS ? state.userLoss : state.itemLoss;
  const { rowPtr, col, val } = csr;
  const { G, L, b, x, accumulate, solve, finish, terms } = s;
  const { abort } = state;
  for (let row = start; row < end; row++) {
    // One atomic load per row: the price of stopping within one row's solve when aborted.
    if (Atomics.load(abort, 0) !== 0) return;
    const p0 = rowPtr[row];
    const p1 = rowPtr[row + 1];
    const n = p1 - p0;
    accumulate(col, val, other, p0, p1, G, b);
    const reg = regParam * n;
    const base = row * rank;
    let norm = 0;
    let xb = 0;
    let xGx = 0;
    if (finish && terms && !nonnegative) {
      finish(G, b, reg, out, base, terms);
      norm = terms[0];
      xb = terms[1];
      xGx = terms[2];
    } else {
      if (solve) {
        solve(G, b, reg, x);
      } else {
        L.set(G);
        for (let i = 0; i < rank; i++) L[i * rank + i] += reg;
        choleskySolve(L, b, x, rank);
      }
      if (nonnegative) {
        // NNLS starts from the unconstrained solution and needs M = G + reg I intact.
        L.set(G);
        for (let i = 0; i < rank; i++) L[i * rank + i] += reg;
        nnlsRefine(L, b, x, rank);
      }
      for (let i = 0; i < rank; i++) out[base + i] = x[i];
      // The objective uses the stored (float32) factors, as does everything downstream.
      for (let i = 0; i < rank; i++) {
        const xi = out[base + i];
        norm += xi * xi;
        xb += xi * b[i];
        const ri = i * rank;
        let gi = 0;
        for (let m = 0; m < rank; m++) gi += G[ri + m] * out[base + m];
        xGx += xi * gi;
      }
    }
    loss[row] = side === SIDE_USERS ? state.userSumSq[row] - 2 * xb + xGx + reg * norm : reg * norm;
  }
}

/**
 * Takes blocks from the side's shared counter until none are left or the abort flag is up; safe
 * to run in many threads.
 */
export function drainBlocks(state: AlsState, side: Side, s: Scratch): void {
  const blocks = side === SIDE_USERS ? state.userBlocks : state.itemBlocks;
  const count = blocks.length - 1;
  for (;;) {
    if (Atomics.load(state.abort, 0) !== 0) return;
    const k = Atomics.add(state.counters, side, 1);
    if (k >= count) return;
    solveRows(state, side, blocks[k], blocks[k + 1], s);
  }
}
