/**
 * The ALS-WR maths outside the per-row kernel, as plain functions over typed arrays: dense
 * re-indexing of ids, CSR layouts by user and by movie, Spark-style initialisation, the sweep
 * loop, and scoring. No files here; the step (als.ts) does the I/O through the adapter.
 */
import { binarySearch, mixSeed, mulberry32 } from "@ms/contracts";
import { SIDE_ITEMS, SIDE_USERS, type AlsState, type Csr } from "./kernel-types.js";
import { inProcessRunner, interruption, type SweepRunner } from "./pool.js";
import { createWasmArena, MAX_WASM_RANK, type WasmArena } from "./wasm.js";

/** Maps ids to dense indices 0..n-1 in ascending id order; ids never trained on map to -1. */
export interface IdIndex {
  ids: Int32Array;
  lookup(id: number): number;
}

/** Largest id range indexed by a direct table (4 bytes per slot) instead of binary search. */
const MAX_TABLE_RANGE = 1 << 25;

/** The dense index of the ids on rows where `mask` is 1. */
export function indexIds(ids: Int32Array, mask: Uint8Array): IdIndex {
  let min = 2147483647;
  let max = -2147483648;
  let any = false;
  for (let i = 0; i < ids.length; i++) {
    if (mask[i] === 0) continue;
    any = true;
    const v = ids[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!any) return { ids: new Int32Array(0), lookup: () => -1 };
  const range = max - min + 1;
  if (range <= Math.max(MAX_TABLE_RANGE, 4 * ids.length)) {
    const table = new Int32Array(range);
    for (let i = 0; i < ids.length; i++) if (mask[i] !== 0) table[ids[i] - min] = 1;
    let n = 0;
    for (let k = 0; k < range; k++) if (table[k] !== 0) table[k] = ++n;
    const dense = new Int32Array(n);
    for (let k = 0; k < range; k++) if (table[k] !== 0) dense[table[k] - 1] = k + min;
    return { ids: dense, lookup: (id) => (id < min || id > max ? -1 : table[id - min] - 1) };
  }
  const chosen = new Int32Array(ids.length);
  let m = 0;
  for (let i = 0; i < ids.length; i++) if (mask[i] !== 0) chosen[m++] = ids[i];
  const sorted = chosen.subarray(0, m).sort();
  let n = 0;
  for (let i = 0; i < m; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[n++] = sorted[i];
  const dense = sorted.slice(0, n);
  return { ids: dense, lookup: (id) => binarySearch(dense, id) };
}

function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n);
}
function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n);
}
function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, n) * 8), 0, n);
}

/** Where the arrays the accumulation reads are allocated: a WASM arena, or plain shared buffers. */
interface KernelAlloc {
  int32(n: number): Int32Array;
  float32(n: number): Float32Array;
}
const sharedAlloc: KernelAlloc = { int32: sharedInt32, float32: sharedFloat32 };

/** CSR of the training ratings grouped by `rowIdx`; entries keep input order within a row. */
export function buildCsr(
  rowIdx: Int32Array,
  colIdx: Int32Array,
  ratings: Float32Array,
  mask: Uint8Array,
  rows: number,
  nnz: number,
  alloc: KernelAlloc = sharedAlloc,
): Csr {
  const rowPtr = sharedInt32(rows + 1);
  for (let i = 0; i < rowIdx.length; i++) if (mask[i] !== 0) rowPtr[rowIdx[i] + 1]++;
  for (let r = 0; r < rows; r++) rowPtr[r + 1] += rowPtr[r];
  const cursor = rowPtr.slice(0, rows);
  const col = alloc.int32(nnz);
  const val = alloc.float32(nnz);
  for (let i = 0; i < rowIdx.length; i++) {
    if (mask[i] === 0) continue;
    const p = cursor[rowIdx[i]]++;
    col[p] = colIdx[i];
    val[p] = ratings[i];
  }
  return { rowPtr, col, val };
}

/** Work blocks of roughly equal rating counts; their layout never affects the result. */
export function buildBlocks(rowPtr: Int32Array, rows: number): Int32Array {
  const nnz = rowPtr[rows];
  const target = Math.max(2048, Math.ceil(nnz / 1024));
  const cuts = [0];
  let last = 0;
  for (let r = 1; r < rows; r++) {
    if (rowPtr[r] - rowPtr[last] >= target) {
      cuts.push(r);
      last = r;
    }
  }
  cuts.push(rows);
  const out = sharedInt32(cuts.length);
  out.set(cuts);
  return out;
}

/** The shared generator, seeded through a murmur3 finaliser so nearby seeds give unrelated streams. */
function rng(seed: number, salt: number): () => number {
  return mulberry32(mixSeed(seed, salt));
}

/**
 * Spark's initialisation: each factor vector is standard normal, scaled to unit length (and
 * made non-negative when the solve is). One stream per side from the seed, rows in id order.
 */
export function initFactors(out: Float32Array, rows: number, rank: number, seed: number, salt: number, nonnegative: boolean): void {
  const next = rng(seed, salt);
  const v = new Float64Array(rank);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let j = 0; j < rank; j++) {
      const u = 1 - next();
      const g = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
      v[j] = nonnegative ? Math.abs(g) : g;
      norm += v[j] * v[j];
    }
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < rank; j++) out[r * rank + j] = v[j] * scale;
  }
}

export interface RatingsInput {
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
}

export interface FitConfig {
  rank: number;
  maxIter: number;
  regParam: number;
  nonnegative: boolean;
  seed: number;
}

/** The prepared problem: ALS state plus what scoring needs (dense indices of every input row). */
export interface Problem {
  state: AlsState;
  users: IdIndex;
  items: IdIndex;
  /** Dense user / movie index per input row, -1 for ids without factors (cold start). */
  rowUser: Int32Array;
  rowItem: Int32Array;
  trainRows: number;
}

/** Indexes ids over the training rows (mask 1), lays the ratings out in CSR and initialises factors. */
export function prepareProblem(input: RatingsInput, mask: Uint8Array, config: FitConfig): Problem {
  const { rank } = config;
  const users = indexIds(input.userIds, mask);
  const items = indexIds(input.movieIds, mask);
  const n = input.userIds.length;
  const rowUser = new Int32Array(n);
  const rowItem = new Int32Array(n);
  let trainRows = 0;
  for (let i = 0; i < n; i++) {
    rowUser[i] = users.lookup(input.userIds[i]);
    rowItem[i] = items.lookup(input.movieIds[i]);
    trainRows += mask[i];
  }
  const nu = users.ids.length;
  const ni = items.ids.length;
  // Ratings and factors go into one shared WASM memory when the WASM kernel can run (SIMD
  // available, rank in range, under 4 GiB), so no thread ever copies them into its instance.
  const arena: WasmArena | undefined = rank <= MAX_WASM_RANK ? createWasmArena(4 * (4 * trainRows + (nu + ni) * rank), 6) : undefined;
  const alloc = arena ?? sharedAlloc;
  const byUser = buildCsr(rowUser, rowItem, input.ratings, mask, nu, trainRows, alloc);
  const byItem = buildCsr(rowItem, rowUser, input.ratings, mask, ni, trainRows, alloc);
  const userSumSq = sharedFloat64(nu);
  for (let u = 0; u < nu; u++) {
    let s = 0;
    for (let p = byUser.rowPtr[u]; p < byUser.rowPtr[u + 1]; p++) s += byUser.val[p] * byUser.val[p];
    userSumSq[u] = s;
  }
  const state: AlsState = {
    rank,
    regParam: config.regParam,
    nonnegative: config.nonnegative,
    byItem,
    byUser,
    userFactors: alloc.float32(nu * rank),
    itemFactors: alloc.float32(ni * rank),
    userSumSq,
    userLoss: sharedFloat64(nu),
    itemLoss: sharedFloat64(ni),
    itemBlocks: buildBlocks(byItem.rowPtr, ni),
    userBlocks: buildBlocks(byUser.rowPtr, nu),
    counters: sharedInt32(2),
    abort: sharedInt32(1),
    ...(arena ? { memory: arena.memory } : {}),
  };
  initFactors(state.userFactors, nu, rank, config.seed, 1, config.nonnegative);
  initFactors(state.itemFactors, ni, rank, config.seed, 2, config.nonnegative);
  return { state, users, items, rowUser, rowItem, trainRows };
}

/** Sums in row order, so the total does not depend on which thread wrote which row. */
function sum(values: Float64Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s;
}

/**
 * Runs `maxIter` iterations, each updating movies from users then users from movies (Spark's
 * order). After each iteration reports the ALS-WR objective per training rating:
 * (sum (r - x.y)^2 + lambda (sum n_u |x_u|^2 + sum n_i |y_i|^2)) / n_train.
 */
export async function fitProblem(
  problem: Problem,
  maxIter: number,
  runner: SweepRunner = inProcessRunner(problem.state),
  onIteration: (iteration: number, loss: number) => void = () => undefined,
  signal?: AbortSignal,
): Promise<number[]> {
  const { state } = problem;
  const losses: number[] = [];
  for (let iter = 1; iter <= maxIter; iter++) {
    if (signal?.aborted) throw interruption(signal);
    await runner.run(SIDE_ITEMS);
    if (signal?.aborted) throw interruption(signal);
    await runner.run(SIDE_USERS);
    const loss = (sum(state.userLoss) + sum(state.itemLoss)) / problem.trainRows;
    losses.push(loss);
    onIteration(iter, loss);
  }
  return losses;
}

/** Prediction x_u . y_i in double precision from the stored float32 factors. */
export function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, rank: number): number {
  let s = 0;
  for (let j = 0; j < rank; j++) s += a[ai + j] * b[bi + j];
  return s;
}

export interface Score {
  /** Rows selected by the mask value. */
  rows: number;
  /** Of those, rows whose user or movie has no factors. */
  coldRows: number;
  /** Mean squared error over the rows that have factors. */
  mse: number;
}

/** MSE of the rows where `mask[i] === side`, in input row order. */
export function scoreRows(
  problem: Pick<Problem, "rowUser" | "rowItem">,
  userFactors: Float32Array,
  itemFactors: Float32Array,
  rank: number,
  ratings: Float32Array,
  mask: Uint8Array,
  side: 0 | 1,
): Score {
  const { rowUser, rowItem } = problem;
  let rows = 0;
  let cold = 0;
  let sse = 0;
  for (let i = 0; i < ratings.length; i++) {
    if (mask[i] !== side) continue;
    rows++;
    const u = rowUser[i];
    const m = rowItem[i];
    if (u < 0 || m < 0) {
      cold++;
      continue;
    }
    const e = dot(userFactors, u * rank, itemFactors, m * rank, rank) - ratings[i];
    sse += e * e;
  }
  const scored = rows - cold;
  return { rows, coldRows: cold, mse: scored > 0 ? sse / scored : Number.NaN };
}

/** How many CSR rows hold fewer than `min` entries, and the first of them (-1 when none). */
export function rowsBelow(rowPtr: Int32Array, rows: number, min: number): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let r = 0; r < rows; r++) {
    if (rowPtr[r + 1] - rowPtr[r] >= min) continue;
    if (first < 0) first = r;
    count++;
  }
  return { count, first };
}

/** How many rows of a row-major matrix hold a NaN or infinite value, and the first of them (-1 when none). */
export function nonFiniteRows(values: Float32Array, rank: number): { count: number; first: number } {
  let count = 0;
  let first = -1;
  const rows = rank > 0 ? values.length / rank : 0;
  for (let r = 0; r < rows; r++) {
    const base = r * rank;
    for (let j = 0; j < rank; j++) {
      // v - v is 0 for finite v and NaN for NaN and +-Infinity: one test for both.
      const v = values[base + j];
      if (v - v !== 0) {
        if (first < 0) first = r;
        count++;
        break;
      }
    }
  }
  return { count, first };
}
