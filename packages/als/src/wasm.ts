/**
 * A WebAssembly version of the per-row kernel: the rank-specialised accumulation of the normal
 * equations in SIMD (f64x2) and the Cholesky solve with every entry in a local, emitted as module
 * bytes at run time for the rank at hand (no toolchain, no build step, any rank up to
 * MAX_WASM_RANK).
 *
 * Why emitted per rank: as for the generated JS kernel, straight-line code lets the compiler
 * keep the accumulators in registers or stack slots with no index arithmetic. Why f64x2 and the
 * same pairing as the JS kernel: every lane does exactly the scalar kernel's operations in the
 * same order (two ratings per trip, their products summed first, no fused multiply-add; the solve
 * likewise follows `choleskySolve`), so the WASM kernel gives the JS kernels' bits and a run may
 * fall back to JS (no SIMD, memory over 4 GiB, rank over MAX_WASM_RANK) without changing any
 * result. Measured at rank 12: accumulation about 3x faster than the generated JS and the solve
 * about 1.5x faster than the JS Cholesky (tools/bench/als/kernel.mjs); the row finish (solve,
 * float32 store, objective terms in one call) about 6% off a single-threaded fit.
 *
 * The module imports one shared memory that holds the ratings (CSR) and both factor matrices
 * (see `createWasmArena`), so neither ratings nor factors are ever copied; each thread owns a
 * small scratch region for G, b, x and the terms, taken with an atomic `memory.grow`.
 */
import type { Accumulate, WasmMemory } from "./kernel-types.js";

export type { WasmMemory } from "./kernel-types.js";

/** The slice of the WebAssembly JS API used here (the workspace's type libraries omit it). */
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
};

/** Above this rank the straight-line module gets too large to pay off (as for the JS kernel). */
export const MAX_WASM_RANK = 32;

const PAGE = 65536;
/** wasm32 addresses at most 65536 pages; leave room for per-thread scratch growth. */
const MAX_PAGES = 65536;
const SCRATCH_RESERVE_PAGES = 1024;

// --- Binary encoding helpers (https://webassembly.github.io/spec/core/binary/) ---

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function s32(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function name(s: string): number[] {
  return [...u32(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

function section(id: number, body: number[]): number[] {
  return [id, ...u32(body.length), ...body];
}

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

/** Instruction emitters, each returning its bytes. */
const op = {
  localGet: (i: number) => [0x20, ...u32(i)],
  localSet: (i: number) => [0x21, ...u32(i)],
  i32Const: (v: number) => [0x41, ...s32(v)],
  i32Add: () => [0x6a],
  i32Mul: () => [0x6c],
  i32Shl: () => [0x74],
  i32GeS: () => [0x4e],
  i32Load: (offset: number) => [0x28, 0, ...u32(offset)],
  f32Load: (offset: number) => [0x2a, 0, ...u32(offset)],
  f64Load: (offset: number) => [0x2b, 0, ...u32(offset)],
  f64Store: (offset: number) => [0x39, 0, ...u32(offset)],
  f64Const: (v: number) => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)],
  f64Add: () => [0xa0],
  f64Sub: () => [0xa1],
  f64Mul: () => [0xa2],
  f64Div: () => [0xa3],
  f64Sqrt: () => [0x9f],
  f64Gt: () => [0x64],
  select: () => [0x1b],
  f64PromoteF32: () => [0xbb],
  f32DemoteF64: () => [0xb6],
  f32Store: (offset: number) => [0x38, 0, ...u32(offset)],
  simd: (code: number, ...imm: number[]) => [0xfd, ...u32(code), ...imm],
};
const v128Load32Zero = (offset: number) => op.simd(0x5c, 0, ...u32(offset));
const v128Load64Zero = (offset: number) => op.simd(0x5d, 0, ...u32(offset));
const f64x2PromoteLow = () => op.simd(0x5f);
const f64x2Splat = () => op.simd(0x14);
const f64x2ExtractLane = (lane: number) => op.simd(0x21, lane);
const f64x2Add = () => op.simd(0xf0);
const f64x2Mul = () => op.simd(0xf2);
/** i8x16.shuffle copying f64 lane `lane` of the first operand to both lanes. */
const f64x2Broadcast = (lane: number) => {
  const bytes = Array.from({ length: 8 }, (_, i) => lane * 8 + i);
  return op.simd(0x0d, ...bytes, ...bytes);
};

/** A function body being written: `emit` appends instructions in order. */
type Emit = (...parts: number[][]) => void;

/**
 * The locals of `accumulateCode`: parameters 0..6, then i32 locals p, j, q, then the v128 locals
 * (b's accumulators, the two factor rows, G's upper-triangle accumulators, four temporaries).
 */
function accumulateLocals(k: number) {
  const nv = (k + 1) >> 1;
  const [COL, VAL, Y, START, END, G, B] = [0, 1, 2, 3, 4, 5, 6];
  const [P, J, Q] = [7, 8, 9];
  let next = 10;
  const bAcc = Array.from({ length: nv }, () => next++);
  const yv = Array.from({ length: nv }, () => next++);
  const zv = Array.from({ length: nv }, () => next++);
  const gAcc: number[][] = [];
  for (let a = 0; a < k; a++) {
    const row: number[] = [];
    for (let v = a >> 1; v < nv; v++) row[v] = next++;
    gAcc.push(row);
  }
  const [RS, SS, YA, ZA] = [next++, next++, next++, next++];
  return { k, nv, COL, VAL, Y, START, END, G, B, P, J, Q, bAcc, yv, zv, gAcc, RS, SS, YA, ZA, numV128: next - 10 };
}
type AccumulateLocals = ReturnType<typeof accumulateLocals>;

/** The loads of one rating entry: its factor row's address, the row as f64x2 vectors, the rating splatted. */
function entryLoads(l: AccumulateLocals, emit: Emit) {
  const { k, nv, COL, VAL, Y, P } = l;
  /** address = base + p*4 (+ offset given to the load). */
  const entryAddr = (base: number) => emit(op.localGet(base), op.localGet(P), op.i32Const(2), op.i32Shl(), op.i32Add());
  return {
    /** local = Y + col[p + which] * 4k */
    rowAddr: (local: number, which: number) => {
      emit(op.localGet(Y));
      entryAddr(COL);
      emit(op.i32Load(which * 4), op.i32Const(4 * k), op.i32Mul(), op.i32Add(), op.localSet(local));
    },
    /** The factor row at `base` as nv f64x2 vectors (a missing last lane reads as 0). */
    loadRow: (base: number, dst: number[]) => {
      for (let v = 0; v < nv; v++) {
        const odd = 2 * v + 1 === k;
        emit(op.localGet(base), odd ? v128Load32Zero(8 * v) : v128Load64Zero(8 * v), f64x2PromoteLow(), op.localSet(dst[v]));
      }
    },
    loadRating: (which: number, dst: number) => {
      entryAddr(VAL);
      emit(op.f32Load(which * 4), op.f64PromoteF32(), f64x2Splat(), op.localSet(dst));
    },
  };
}

/** b += r*y + s*z, G row a += y_a*y + z_a*z: the scalar kernels' expression, lane by lane. */
function emitPairUpdate(l: AccumulateLocals, emit: Emit): void {
  const { k, nv, bAcc, yv, zv, gAcc, RS, SS, YA, ZA } = l;
  for (let v = 0; v < nv; v++) {
    emit(
      op.localGet(bAcc[v]),
      op.localGet(RS),
      op.localGet(yv[v]),
      f64x2Mul(),
      op.localGet(SS),
      op.localGet(zv[v]),
      f64x2Mul(),
      f64x2Add(),
      f64x2Add(),
      op.localSet(bAcc[v]),
    );
  }
  for (let a = 0; a < k; a++) {
    emit(op.localGet(yv[a >> 1]), op.localGet(yv[a >> 1]), f64x2Broadcast(a & 1), op.localSet(YA));
    emit(op.localGet(zv[a >> 1]), op.localGet(zv[a >> 1]), f64x2Broadcast(a & 1), op.localSet(ZA));
    for (let v = a >> 1; v < nv; v++) {
      emit(
        op.localGet(gAcc[a][v]),
        op.localGet(YA),
        op.localGet(yv[v]),
        f64x2Mul(),
        op.localGet(ZA),
        op.localGet(zv[v]),
        f64x2Mul(),
        f64x2Add(),
        f64x2Add(),
        op.localSet(gAcc[a][v]),
      );
    }
  }
}

/** b += r*y; G row a += y_a*y: one rating's update. */
function emitSingleUpdate(l: AccumulateLocals, emit: Emit): void {
  const { k, nv, bAcc, yv, gAcc, RS, YA } = l;
  for (let v = 0; v < nv; v++)
    emit(op.localGet(bAcc[v]), op.localGet(RS), op.localGet(yv[v]), f64x2Mul(), f64x2Add(), op.localSet(bAcc[v]));
  for (let a = 0; a < k; a++) {
    emit(op.localGet(yv[a >> 1]), op.localGet(yv[a >> 1]), f64x2Broadcast(a & 1), op.localSet(YA));
    for (let v = a >> 1; v < nv; v++)
      emit(op.localGet(gAcc[a][v]), op.localGet(YA), op.localGet(yv[v]), f64x2Mul(), f64x2Add(), op.localSet(gAcc[a][v]));
  }
}

/** Writes b and both triangles of G from the upper-triangle lanes (c >= a). */
function emitStores(l: AccumulateLocals, emit: Emit): void {
  const { k, G, B, bAcc, gAcc } = l;
  for (let a = 0; a < k; a++) emit(op.localGet(B), op.localGet(bAcc[a >> 1]), f64x2ExtractLane(a & 1), op.f64Store(8 * a));
  for (let a = 0; a < k; a++) {
    for (let c = a; c < k; c++) {
      const lane = () => emit(op.localGet(gAcc[a][c >> 1]), f64x2ExtractLane(c & 1));
      emit(op.localGet(G));
      lane();
      emit(op.f64Store(8 * (a * k + c)));
      if (c !== a) {
        emit(op.localGet(G));
        lane();
        emit(op.f64Store(8 * (c * k + a)));
      }
    }
  }
}

/**
 * `acc(col, val, Y, start, end, G, b)`: byte addresses of the CSR column indices (i32), ratings
 * (f32), the other side's factors (f32, row-major), the entry range, and where to write G
 * (rank x rank, f64, full) and b (rank, f64). Returns the function's code (locals + body).
 */
function accumulateCode(rank: number): number[] {
  const l = accumulateLocals(rank);
  const { START, END, P, J, Q, yv, zv, RS, SS } = l;
  const body: number[] = [];
  const emit: Emit = (...parts) => {
    for (const p of parts) body.push(...p);
  };
  const { rowAddr, loadRow, loadRating } = entryLoads(l, emit);

  emit(op.localGet(START), op.localSet(P));
  // block $done { loop $pairs { if (p + 1 >= end) break; ...; p += 2; continue } }
  emit([0x02, 0x40], [0x03, 0x40]);
  emit(op.localGet(P), op.i32Const(1), op.i32Add(), op.localGet(END), op.i32GeS(), [0x0d, 1]);
  rowAddr(J, 0);
  rowAddr(Q, 1);
  loadRow(J, yv);
  loadRow(Q, zv);
  loadRating(0, RS);
  loadRating(1, SS);
  emitPairUpdate(l, emit);
  emit(op.localGet(P), op.i32Const(2), op.i32Add(), op.localSet(P), [0x0c, 0], [0x0b], [0x0b]);
  // The odd last rating: if (p < end) { b += r*y; G row a += y_a*y }.
  emit(op.localGet(P), op.localGet(END), op.i32GeS(), [0x04, 0x40], [0x05]);
  rowAddr(J, 0);
  loadRow(J, yv);
  loadRating(0, RS);
  emitSingleUpdate(l, emit);
  emit([0x0b]);
  emitStores(l, emit);
  emit([0x0b]);

  return [...u32(2), ...u32(3), I32, ...u32(l.numV128), V128, ...body];
}

/**
 * `solve(G, b, reg, x)`: the Cholesky solve of (G + reg I) x = b, written to x (f64), with every
 * entry of L and x in a local. It is `choleskySolve`'s arithmetic in the same order (including
 * the clamp of a non-positive pivot), so it gives the same bits.
 *
 * With `finish`, the function is `row(G, b, reg, out, terms)` instead: the solution is stored as
 * float32 at `out` and, from those stored values, terms = [|x|^2, x.b, x'Gx] (f64), the objective
 * terms `solveRows` computes in JS, in its order; one call per row instead of a JS tail loop.
 */
function solveCode(rank: number, finish: boolean): number[] {
  const k = rank;
  const [G, B, REG, X] = [0, 1, 2, 3];
  const TERMS = 4;
  let next = finish ? 5 : 4;
  const S = next++;
  const L: number[][] = [];
  for (let i = 0; i < k; i++) L.push(Array.from({ length: i + 1 }, () => next++));
  const x = Array.from({ length: k }, () => next++);
  const [NORM, XB, XGX] = [next++, next++, next++];
  const numF64 = next - (finish ? 5 : 4);
  const body: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const p of parts) body.push(...p);
  };
  const tiny = op.f64Const(1e-300);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      emit(op.localGet(G), op.f64Load(8 * (i * k + j)));
      if (i === j) emit(op.localGet(REG), op.f64Add());
      for (let m = 0; m < j; m++) emit(op.localGet(L[i][m]), op.localGet(L[j][m]), op.f64Mul(), op.f64Sub());
      if (i === j)
        emit(op.localSet(S), op.localGet(S), tiny, op.localGet(S), tiny, op.f64Gt(), op.select(), op.f64Sqrt(), op.localSet(L[i][i]));
      else emit(op.localGet(L[j][j]), op.f64Div(), op.localSet(L[i][j]));
    }
  }
  for (let i = 0; i < k; i++) {
    emit(op.localGet(B), op.f64Load(8 * i));
    for (let m = 0; m < i; m++) emit(op.localGet(L[i][m]), op.localGet(x[m]), op.f64Mul(), op.f64Sub());
    emit(op.localGet(L[i][i]), op.f64Div(), op.localSet(x[i]));
  }
  for (let i = k - 1; i >= 0; i--) {
    emit(op.localGet(x[i]));
    for (let m = i + 1; m < k; m++) emit(op.localGet(L[m][i]), op.localGet(x[m]), op.f64Mul(), op.f64Sub());
    emit(op.localGet(L[i][i]), op.f64Div(), op.localSet(x[i]));
  }
  if (!finish) {
    for (let i = 0; i < k; i++) emit(op.localGet(X), op.localGet(x[i]), op.f64Store(8 * i));
  } else {
    // x_i becomes the stored float32 value, as `solveRows` reads it back from the factors.
    for (let i = 0; i < k; i++) {
      emit(op.localGet(x[i]), op.f32DemoteF64(), op.f64PromoteF32(), op.localSet(x[i]));
      emit(op.localGet(X), op.localGet(x[i]), op.f32DemoteF64(), op.f32Store(4 * i));
    }
    for (let i = 0; i < k; i++) {
      emit(op.localGet(NORM), op.localGet(x[i]), op.localGet(x[i]), op.f64Mul(), op.f64Add(), op.localSet(NORM));
      emit(op.localGet(XB), op.localGet(x[i]), op.localGet(B), op.f64Load(8 * i), op.f64Mul(), op.f64Add(), op.localSet(XB));
      emit(op.localGet(XGX), op.localGet(x[i]), op.f64Const(0));
      for (let m = 0; m < k; m++) emit(op.localGet(G), op.f64Load(8 * (i * k + m)), op.localGet(x[m]), op.f64Mul(), op.f64Add());
      emit(op.f64Mul(), op.f64Add(), op.localSet(XGX));
    }
    emit(op.localGet(TERMS), op.localGet(NORM), op.f64Store(0));
    emit(op.localGet(TERMS), op.localGet(XB), op.f64Store(8));
    emit(op.localGet(TERMS), op.localGet(XGX), op.f64Store(16));
  }
  emit([0x0b]);
  return [...u32(1), ...u32(numF64), F64, ...body];
}

/** The module for one rank: imports the shared memory, exports `acc`, `solve` and `row`. */
export function kernelModuleBytes(rank: number): Uint8Array {
  const acc = accumulateCode(rank);
  const solve = solveCode(rank, false);
  const row = solveCode(rank, true);
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [
      ...u32(3),
      ...[0x60, ...u32(7), I32, I32, I32, I32, I32, I32, I32, ...u32(0)],
      ...[0x60, ...u32(4), I32, I32, F64, I32, ...u32(0)],
      ...[0x60, ...u32(5), I32, I32, F64, I32, I32, ...u32(0)],
    ]),
    // (import "env" "mem" (memory 0 65536 shared))
    ...section(2, [...u32(1), ...name("env"), ...name("mem"), 0x02, 0x03, ...u32(0), ...u32(MAX_PAGES)]),
    ...section(3, [...u32(3), ...u32(0), ...u32(1), ...u32(2)]),
    ...section(7, [...u32(3), ...name("acc"), 0x00, ...u32(0), ...name("solve"), 0x00, ...u32(1), ...name("row"), 0x00, ...u32(2)]),
    ...section(10, [...u32(3), ...u32(acc.length), ...acc, ...u32(solve.length), ...solve, ...u32(row.length), ...row]),
  ];
  return Uint8Array.from(bytes);
}

const modules = new Map<number, object>();

function moduleFor(rank: number): object {
  let m = modules.get(rank);
  if (!m) {
    m = new WebAssembly.Module(kernelModuleBytes(rank));
    modules.set(rank, m);
  }
  return m;
}

let simd: boolean | undefined;

/** Whether this runtime validates the SIMD module (Node 20 does; anything else falls back to JS). */
export function wasmSimdAvailable(): boolean {
  if (simd === undefined) {
    try {
      simd = typeof WebAssembly === "object" && WebAssembly.validate(kernelModuleBytes(3));
    } catch {
      simd = false;
    }
  }
  return simd;
}

/** A shared memory plus a bump allocator for the typed arrays the WASM kernel reads. */
export interface WasmArena {
  memory: WasmMemory;
  int32(n: number): Int32Array;
  float32(n: number): Float32Array;
}

/**
 * A shared memory of `bytes` (plus alignment slack) with room to grow for per-thread scratch,
 * or undefined when it would not fit the 4 GiB of wasm32, cannot be reserved, or SIMD is
 * unavailable.
 */
export function createWasmArena(bytes: number, arrays: number): WasmArena | undefined {
  if (!wasmSimdAvailable()) return undefined;
  const pages = Math.ceil((bytes + 16 * (arrays + 1)) / PAGE) + 1;
  if (pages + SCRATCH_RESERVE_PAGES > MAX_PAGES) return undefined;
  let memory: WasmMemory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages + SCRATCH_RESERVE_PAGES, shared: true });
  } catch {
    // Address space refused (e.g. a ulimit -v): the JS kernel in plain shared buffers still works.
    return undefined;
  }
  const buffer = memory.buffer;
  // Start past 0 so that no array sits at address 0, and keep every array 16-byte aligned.
  let offset = 16;
  const take = (n: number) => {
    const at = offset;
    offset += Math.ceil((n * 4) / 16) * 16;
    if (offset > buffer.byteLength) throw new Error("als: wasm arena overflow (sizing bug)");
    return at;
  };
  return {
    memory,
    int32: (n) => new Int32Array(buffer, take(n), n),
    float32: (n) => new Float32Array(buffer, take(n), n),
  };
}

/** Per-thread G, b, x and terms inside `memory`, in a region this thread owns (atomic grow). */
export function wasmScratch(memory: WasmMemory, rank: number): { G: Float64Array; b: Float64Array; x: Float64Array; terms: Float64Array } {
  const bytes = 8 * (rank * rank + 2 * rank + 3);
  const at = memory.grow(Math.ceil(bytes / PAGE)) * PAGE;
  const buffer = memory.buffer;
  return {
    G: new Float64Array(buffer, at, rank * rank),
    b: new Float64Array(buffer, at + 8 * rank * rank, rank),
    x: new Float64Array(buffer, at + 8 * (rank * rank + rank), rank),
    terms: new Float64Array(buffer, at + 8 * (rank * rank + 2 * rank), 3),
  };
}

/** The two kernels of one thread's instance; see `accumulateCode` and `solveCode`. */
export interface WasmKernels {
  accumulate: Accumulate;
  /** (G + reg I) x = b by Cholesky; G, b and x must be views on the memory. */
  solve(G: Float64Array, b: Float64Array, reg: number, x: Float64Array): void;
  /** The solve, stored as float32 at out[base..], and terms = [|x|^2, x.b, x'Gx] of the stored x. */
  finish(G: Float64Array, b: Float64Array, reg: number, out: Float32Array, base: number, terms: Float64Array): void;
}

/**
 * The WASM kernels for `rank` over `memory`. Every array handed to them must be a view on
 * `memory` (they pass byte offsets); the G, b and x given must be this thread's own.
 */
export function wasmKernelsFor(rank: number, memory: WasmMemory): WasmKernels {
  const instance = new WebAssembly.Instance(moduleFor(rank), { env: { mem: memory } });
  const acc = instance.exports.acc as (col: number, val: number, Y: number, start: number, end: number, G: number, b: number) => void;
  const solve = instance.exports.solve as (G: number, b: number, reg: number, x: number) => void;
  const row = instance.exports.row as (G: number, b: number, reg: number, out: number, terms: number) => void;
  return {
    accumulate: (col, val, Y, start, end, G, b) =>
      acc(col.byteOffset, val.byteOffset, Y.byteOffset, start, end, G.byteOffset, b.byteOffset),
    solve: (G, b, reg, x) => solve(G.byteOffset, b.byteOffset, reg, x.byteOffset),
    finish: (G, b, reg, out, base, terms) => row(G.byteOffset, b.byteOffset, reg, out.byteOffset + 4 * base, terms.byteOffset),
  };
}

/** The WASM accumulation alone (see `wasmKernelsFor`). */
export function accumulateWasm(rank: number, memory: WasmMemory): Accumulate {
  return wasmKernelsFor(rank, memory).accumulate;
}
