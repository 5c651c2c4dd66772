/**
 * The types and constants shared by the per-row kernel (kernel.ts), its WebAssembly version
 * (wasm.ts), the sweep runners and the worker: kept apart so that those modules import them
 * from here instead of from each other (no import cycle).
 */

/** The shared WebAssembly.Memory, as far as this package uses it. */
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  /** Atomic on a shared memory: returns the previous size in pages, so regions never overlap. */
  grow(pages: number): number;
}

/** One side of the ratings in CSR form: row `r` owns entries `rowPtr[r] .. rowPtr[r+1]`. */
export interface Csr {
  rowPtr: Int32Array;
  /** Dense index of the other side's row. */
  col: Int32Array;
  val: Float32Array;
}

/**
 * Everything a half-sweep reads and writes. All arrays may live in SharedArrayBuffers so worker
 * threads see the same memory.
 */
export interface AlsState {
  rank: number;
  regParam: number;
  nonnegative: boolean;
  /** Ratings by movie (to solve movies) and by user (to solve users). */
  byItem: Csr;
  byUser: Csr;
  userFactors: Float32Array;
  itemFactors: Float32Array;
  /** Sum of squared ratings per user, for the training loss from the normal equations. */
  userSumSq: Float64Array;
  /** Per-row terms of the objective, summed in row order by the caller (thread-independent). */
  userLoss: Float64Array;
  itemLoss: Float64Array;
  /** Row boundaries of the work blocks of each side, and one shared block counter per side. */
  itemBlocks: Int32Array;
  userBlocks: Int32Array;
  counters: Int32Array;
  /**
   * Abort flag (one Int32 over shared memory): the thread that handles signals sets slot 0 to 1,
   * and every sweep thread reads it before each row, so a sweep stops within one row's solve.
   */
  abort: Int32Array;
  /**
   * Set when ratings (col, val of both sides) and both factor matrices are views on this shared
   * WebAssembly memory: threads then accumulate with the WASM SIMD kernel (same bits as JS).
   */
  memory?: WasmMemory;
}

export const SIDE_ITEMS = 0;
export const SIDE_USERS = 1;
export type Side = typeof SIDE_ITEMS | typeof SIDE_USERS;

/** Accumulates G = sum y y^T (full, row-major) and b = sum r y over entries [start, end). */
export type Accumulate = (
  col: Int32Array,
  val: Float32Array,
  Y: Float32Array,
  start: number,
  end: number,
  G: Float64Array,
  b: Float64Array,
) => void;
