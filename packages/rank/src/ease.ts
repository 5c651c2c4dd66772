/**
 * EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"), fitted in closed form
 * on the binary user x item matrix X of the training part, restricted to the `maxItems` most-rated
 * items (the cap bounds the m x m inverse; an item outside it is never recommended):
 *
 *   min_B |X - X B|_F^2 + λ |B|_F^2   subject to diag(B) = 0
 *   G = X^T X + λ I,   P = G^-1,   B[i][j] = -P[i][j] / P[j][j] (i != j),   B[j][j] = 0.
 *
 * A user's scores are x_u B: score[j] = sum over the user's rated items i of B[i][j]. For serving
 * speed each row i of B may keep only its `neighbors` entries of largest magnitude (sparse rows, columns sorted
 * ascending so a single entry is found by binary search); neighbors = 0 keeps every entry.
 */
import { invertSpd } from "./inverse.js";
import { TopKSelector } from "./topk.js";

/** The training part grouped by user: items[offsets[u] .. offsets[u+1]) are user u's items, ascending. */
export interface Histories {
  userIds: Int32Array;
  offsets: Int32Array;
  items: Int32Array;
}

/** B as sparse rows over the model's m items (row i: item i's contributions to the others). */
export interface SparseRows {
  offsets: Int32Array;
  cols: Int32Array;
  values: Float32Array;
}

export interface EaseFit {
  rows: SparseRows;
  seconds: { gram: number; inverse: number; prune: number };
}

/**
 * G = X^T X over the model's items: `local[item]` is the item's position in the model (0..m-1)
 * or -1 outside the cap. Only the lower triangle and the diagonal are filled (what invertSpd reads).
 */
export function gramMatrix(h: Histories, local: Int32Array, m: number): Float64Array {
  const g = new Float64Array(m * m);
  const buf = new Int32Array(Math.max(1, longestHistory(h)));
  for (let u = 0; u + 1 < h.offsets.length; u++) {
    let n = 0;
    for (let p = h.offsets[u]; p < h.offsets[u + 1]; p++) {
      const l = local[h.items[p]];
      if (l >= 0) buf[n++] = l;
    }
    // Ascending positions: row b's pairs (b, a < b) walk one row of the lower triangle forward.
    buf.subarray(0, n).sort();
    for (let x = 0; x < n; x++) {
      const row = buf[x] * m;
      for (let y = 0; y <= x; y++) g[row + buf[y]] += 1;
    }
  }
  return g;
}

function longestHistory(h: Histories): number {
  let most = 0;
  for (let u = 0; u + 1 < h.offsets.length; u++) most = Math.max(most, h.offsets[u + 1] - h.offsets[u]);
  return most;
}

/**
 * Fits B from G (lower triangle, modified in place) and λ; keeps `neighbors` entries per row
 * (0: all). `ids` (the model items' ids) break ties when pruning, so the rows are deterministic.
 */
export function easeFromGram(g: Float64Array, m: number, lambda: number, neighbors: number, ids: ArrayLike<number>): EaseFit {
  for (let i = 0; i < m; i++) g[i * m + i] += lambda;
  const t0 = performance.now();
  const diag = invertSpd(g, m);
  const t1 = performance.now();
  const rows = pruneRows(g, m, diag, neighbors, ids);
  const t2 = performance.now();
  return { rows, seconds: { gram: 0, inverse: (t1 - t0) / 1000, prune: (t2 - t1) / 1000 } };
}

/** Row i of B: B[i][j] = -P[i][j] / P[j][j] for j != i, from invertSpd's packed result. */
function rowOfB(p: Float64Array, m: number, diag: Float64Array, i: number, out: Float64Array): void {
  for (let j = 0; j < i; j++) out[j] = -p[i * m + j] / diag[j];
  out[i] = Number.NEGATIVE_INFINITY; // never a neighbour of itself
  for (let j = i + 1; j < m; j++) out[j] = -p[j * m + i] / diag[j];
}

/**
 * B's rows, each cut to its `neighbors` entries of largest magnitude (columns ascending), or
 * whole. Magnitude, not value: the negative entries carry as much of the ranking as the positive
 * ones (on ml-latest-small, keeping the 200 largest values lost 0.028 nDCG@10, the 200 largest
 * magnitudes 0.011; tools/bench/results/2026-12-07-rank.md).
 */
function pruneRows(p: Float64Array, m: number, diag: Float64Array, neighbors: number, ids: ArrayLike<number>): SparseRows {
  const keep = neighbors > 0 ? Math.min(neighbors, m - 1) : m - 1;
  const offsets = new Int32Array(m + 1);
  const cols = new Int32Array(m * keep);
  const values = new Float32Array(m * keep);
  const row = new Float64Array(m);
  const magnitude = new Float64Array(m);
  const selector = keep > 0 && keep < m - 1 ? new TopKSelector(m, keep, ids) : undefined;
  let at = 0;
  for (let i = 0; i < m; i++) {
    rowOfB(p, m, diag, i, row);
    offsets[i] = at;
    if (selector) {
      for (let j = 0; j < m; j++) magnitude[j] = j === i ? Number.NEGATIVE_INFINITY : Math.abs(row[j]);
      const top = selector.select(magnitude);
      const chosen = top.index.subarray(0, top.count).sort();
      for (const j of chosen) {
        cols[at] = j;
        values[at++] = row[j];
      }
    } else
      for (let j = 0; j < m; j++)
        if (j !== i) {
          cols[at] = j;
          values[at++] = row[j];
        }
  }
  offsets[m] = at;
  return { offsets, cols: cols.subarray(0, at), values: values.subarray(0, at) };
}

/** Fits EASE on the histories: the gram matrix over the capped items, then B. */
export function fitEase(h: Histories, local: Int32Array, m: number, lambda: number, neighbors: number, ids: ArrayLike<number>): EaseFit {
  const t0 = performance.now();
  const g = gramMatrix(h, local, m);
  const gramSeconds = (performance.now() - t0) / 1000;
  const fit = easeFromGram(g, m, lambda, neighbors, ids);
  return { rows: fit.rows, seconds: { ...fit.seconds, gram: gramSeconds } };
}
