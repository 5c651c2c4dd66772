/**
 * The inverse of a symmetric positive definite matrix through its Cholesky factor, in place on
 * one row-major Float64Array: the cost of an EASE fit. Hand-written because no npm package does
 * a dense m x m SPD inverse at this size without native code (ml-matrix works on arrays of
 * arrays and solves column by column); the three phases are ordered so every inner loop is a dot
 * product of two contiguous rows, and each is register-blocked four rows at a time, so a row read
 * from memory serves four dot products (the phases are memory-bound otherwise).
 *
 *   1. G = L L^T (Cholesky-Crout by rows): L[i][j] = (G[i][j] - L[i][0:j] . L[j][0:j]) / L[j][j],
 *      L[i][i] = sqrt(G[i][i] - |L[i][0:i]|^2). L goes into the strict lower triangle, its
 *      diagonal into `diag`.
 *   2. W = L^-1 (lower triangular) by forward substitution, one column j at a time, stored
 *      transposed in the upper triangle (row j of the buffer, columns i >= j, holds W[i][j]):
 *      W[i][j] = (delta_ij - L[i][j:i] . W[j:i][j]) / L[i][i].
 *   3. P = G^-1 = W^T W: P[a][b] = W[b:m][a] . W[b:m][b] for a <= b, again a dot product of two
 *      stored rows; written into the strict lower triangle (L is no longer needed) and `diag`.
 *
 * About (1/3 + 1/6 + 1/6) m^3 = 2/3 m^3 multiply-adds. The result: P[i][j] for i > j at
 * a[i*m + j], P[i][i] at diag[i]; the upper triangle holds W^T and is scratch.
 */

/** A matrix that is not positive definite (a pivot <= 0): λ too small for the data, or not a Gram matrix. */
export class NotPositiveDefiniteError extends Error {
  constructor(
    readonly pivot: number,
    readonly value: number,
  ) {
    super(`the matrix is not positive definite (pivot ${pivot} is ${value})`);
  }
}

/** dot(a[ia : ia+n], b[ib : ib+n]), unrolled by four. */
function dot(a: Float64Array, ia: number, b: Float64Array, ib: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < n; k += 4) {
    s0 += a[ia + k] * b[ib + k];
    s1 += a[ia + k + 1] * b[ib + k + 1];
    s2 += a[ia + k + 2] * b[ib + k + 2];
    s3 += a[ia + k + 3] * b[ib + k + 3];
  }
  for (; k < n; k++) s0 += a[ia + k] * b[ib + k];
  return s0 + s1 + s2 + s3;
}

/** Four dot products of four rows (r0..r3) with one row (c), over the same n entries from offset `from`. */
function dot4(
  a: Float64Array,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
  c: number,
  from: number,
  n: number,
  out: Float64Array,
): void {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const end = from + n;
  for (let k = from; k < end; k++) {
    const x = a[c + k];
    s0 += a[r0 + k] * x;
    s1 += a[r1 + k] * x;
    s2 += a[r2 + k] * x;
    s3 += a[r3 + k] * x;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

/** Phase 1: the Cholesky factor, rows in blocks of four sharing each earlier row's load. */
function cholesky(a: Float64Array, m: number, diag: Float64Array): void {
  const acc = new Float64Array(4);
  let i0 = 0;
  for (; i0 + 3 < m; i0 += 4) {
    // Columns before the block: every earlier row j is final, so the four rows share its load.
    for (let j = 0; j < i0; j++) {
      dot4(a, i0 * m, (i0 + 1) * m, (i0 + 2) * m, (i0 + 3) * m, j * m, 0, j, acc);
      const dj = diag[j];
      for (let r = 0; r < 4; r++) a[(i0 + r) * m + j] = (a[(i0 + r) * m + j] - acc[r]) / dj;
    }
    for (let i = i0; i < i0 + 4; i++) choleskyRowFrom(a, m, diag, i, i0);
  }
  for (; i0 < m; i0++) choleskyRowFrom(a, m, diag, i0, 0);
}

/** Row i's entries from column `from` to its diagonal, one dot product each. */
function choleskyRowFrom(a: Float64Array, m: number, diag: Float64Array, i: number, from: number): void {
  const ri = i * m;
  for (let j = from; j < i; j++) a[ri + j] = (a[ri + j] - dot(a, ri, a, j * m, j)) / diag[j];
  const pivot = a[ri + i] - dot(a, ri, a, ri, i);
  if (!(pivot > 0)) throw new NotPositiveDefiniteError(i, pivot);
  diag[i] = Math.sqrt(pivot);
}

/** Phase 2: W = L^-1, column j of W stored as row j from its diagonal; four columns share each row of L. */
function invertFactor(a: Float64Array, m: number, diag: Float64Array): void {
  const acc = new Float64Array(4);
  let j0 = 0;
  for (; j0 + 3 < m; j0 += 4) {
    // The top of the four columns, rows j0..j0+3: a small triangle, one at a time.
    for (let j = j0; j < j0 + 4; j++) for (let i = j; i < j0 + 4; i++) substitute(a, m, diag, i, j);
    for (let i = j0 + 4; i < m; i++) {
      const ri = i * m;
      // Common range k in [j0+3, i) for all four columns, then each column's few earlier terms.
      dot4(a, j0 * m, (j0 + 1) * m, (j0 + 2) * m, (j0 + 3) * m, ri, j0 + 3, i - j0 - 3, acc);
      for (let r = 0; r < 4; r++) {
        const j = j0 + r;
        let s = acc[r];
        for (let k = j; k < j0 + 3; k++) s += a[ri + k] * a[j * m + k];
        a[j * m + i] = -s / diag[i];
      }
    }
  }
  for (; j0 < m; j0++) for (let i = j0; i < m; i++) substitute(a, m, diag, i, j0);
}

/** W[i][j] alone (stored at a[j*m + i]). */
function substitute(a: Float64Array, m: number, diag: Float64Array, i: number, j: number): void {
  if (i === j) {
    a[j * m + j] = 1 / diag[j];
    return;
  }
  a[j * m + i] = -dot(a, i * m + j, a, j * m + j, i - j) / diag[i];
}

/** Phase 3: P = W^T W into the strict lower triangle and `diag`, four values of a per row b. */
function gram(a: Float64Array, m: number, diag: Float64Array): void {
  const acc = new Float64Array(4);
  for (let b = 0; b < m; b++) {
    const rb = b * m;
    const n = m - b;
    let a0 = 0;
    for (; a0 + 3 < b; a0 += 4) {
      dot4(a, a0 * m, (a0 + 1) * m, (a0 + 2) * m, (a0 + 3) * m, rb, b, n, acc);
      for (let r = 0; r < 4; r++) a[rb + a0 + r] = acc[r];
    }
    for (; a0 < b; a0++) a[rb + a0] = dot(a, a0 * m + b, a, rb + b, n);
    diag[b] = dot(a, rb + b, a, rb + b, n);
  }
}

/**
 * Inverts the SPD matrix in `a` (m x m, row-major; only its lower triangle and diagonal are
 * read) in place: afterwards P[i][j] (i > j) is a[i*m + j] and P[i][i] is the returned diag.
 */
export function invertSpd(a: Float64Array, m: number): Float64Array {
  if (a.length < m * m) throw new RangeError(`the buffer holds ${a.length} values, not ${m} x ${m}`);
  const diag = new Float64Array(m);
  cholesky(a, m, diag);
  invertFactor(a, m, diag);
  gram(a, m, diag);
  return diag;
}

/** P[i][j] of invertSpd's result, either triangle. */
export function inverseAt(a: Float64Array, m: number, diag: Float64Array, i: number, j: number): number {
  if (i === j) return diag[i];
  return i > j ? a[i * m + j] : a[j * m + i];
}
