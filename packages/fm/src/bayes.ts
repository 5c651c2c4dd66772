/**
 * Bayesian matrix factorisation with biases, fitted by Gibbs sampling (BPMF, the model of a
 * factorisation machine over user and movie ids, as myFM samples it): r = mu + b_u + b_i + p_u.q_i
 * + noise. Each row's conditional is Gaussian with the shape of an ALS row solve: a regularised
 * (rank+1) x (rank+1) system per user or movie (the bias is one more coordinate), solved by
 * Cholesky, plus a draw through the same factor. Hyper-parameters (a mean and a precision per
 * coordinate and side, the noise precision) are drawn from their Normal-Gamma / Gamma conditionals.
 * Predictions are averaged over the samples after burn-in. The accumulation is the ALS kernel's
 * (rank-specialised straight-line code) over a design copy of the other side ([1, factors] in
 * float32) and the ratings less the other side's bias; one thread, seeded by the project's
 * generator, so a seed gives the same numbers on every run.
 */
import { InterruptedError, MsError, mixSeed, mulberry32 } from "@ms/contracts";
import { kernels } from "@ms/als";

const { accumulatorFor } = kernels;

export interface GibbsOptions {
  rank: number;
  /** Sweeps in all (each draws every user, then every movie, then the hyper-parameters). */
  samples: number;
  /** Sweeps discarded before predictions are averaged. */
  burnIn: number;
  seed: number;
  signal?: AbortSignal;
}

/** Ratings with users and movies already mapped to dense indices. */
export interface GibbsData {
  userIdx: Int32Array;
  itemIdx: Int32Array;
  ratings: Float32Array;
  nUsers: number;
  nItems: number;
}

export interface GibbsFit {
  /** Posterior-mean prediction of every query row, in the order given. */
  predictions: Float64Array;
  /** The global mean the model is centred on (the training mean). */
  mu: number;
  /** Posterior means per user / movie, row-major (rank+1 values: the bias, then the factors). */
  userMean: Float64Array;
  itemMean: Float64Array;
  /** Training ratings per user / movie in this fit. */
  userCount: Int32Array;
  itemCount: Int32Array;
}

/** Standard normal draws (Marsaglia's polar method) from a seeded uniform stream. */
class Normal {
  private spare = Number.NaN;
  constructor(readonly uniform: () => number) {}
  next(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = Number.NaN;
      return s;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.uniform() - 1;
      v = 2 * this.uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * f;
    return u * f;
  }
  /** Gamma(shape, scale 1), Marsaglia and Tsang. */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * this.uniform() ** (1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.next();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }
}

interface Side {
  ptr: Int32Array;
  /** The other side's index and the rating's row, per entry. */
  other: Int32Array;
  row: Int32Array;
  /** Per entry: the rating less mu and the other side's current bias (rewritten before each half-sweep). */
  val: Float32Array;
}

function groupBy(index: Int32Array, otherIndex: Int32Array, rows: Int32Array, n: number): Side {
  const ptr = new Int32Array(n + 1);
  for (let k = 0; k < rows.length; k++) ptr[index[rows[k]] + 1]++;
  for (let r = 0; r < n; r++) ptr[r + 1] += ptr[r];
  const cursor = ptr.slice(0, n);
  const other = new Int32Array(rows.length);
  const row = new Int32Array(rows.length);
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k];
    const p = cursor[index[i]]++;
    other[p] = otherIndex[i];
    row[p] = i;
  }
  return { ptr, other, row, val: new Float32Array(rows.length) };
}

/** Aborts between sweeps and lets the event loop run, so signal handlers are heard during a long fit. */
async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (signal?.aborted) throw signal.reason instanceof MsError ? signal.reason : new InterruptedError("bayes: sampling interrupted");
}

/**
 * Samples the model on `trainRows` and returns the posterior-mean predictions of `queryRows`
 * (indices into `data`), with the posterior means of the biases and factors.
 */
export async function gibbsFit(data: GibbsData, trainRows: Int32Array, queryRows: Int32Array, options: GibbsOptions): Promise<GibbsFit> {
  const K = options.rank + 1;
  const { nUsers, nItems, ratings, userIdx, itemIdx } = data;
  const normal = new Normal(mulberry32(mixSeed(options.seed, 0x6a77)));
  const byUser = groupBy(userIdx, itemIdx, trainRows, nUsers);
  const byItem = groupBy(itemIdx, userIdx, trainRows, nItems);
  const mu = meanOf(ratings, trainRows);

  const U = initialFactors(nUsers, K, normal);
  const V = initialFactors(nItems, K, normal);
  const lamU = new Float64Array(K).fill(1);
  const lamV = new Float64Array(K).fill(1);
  const meanU = new Float64Array(K);
  const meanV = new Float64Array(K);
  let alpha = 1;

  const conditional = new RowConditional(K, normal);
  const accumulate = accumulatorFor(K);
  const design = new Float32Array(Math.max(nUsers, nItems) * K);
  /** Draws every row of X from its conditional given the other side O. */
  const sweep = (side: Side, X: Float64Array, O: Float64Array, nOther: number, lam: Float64Array, mean: Float64Array, n: number) => {
    const { ptr, other, row, val } = side;
    for (let r = 0; r < nOther; r++) {
      const o = r * K;
      design[o] = 1;
      for (let f = 1; f < K; f++) design[o + f] = O[o + f];
    }
    for (let p = 0; p < val.length; p++) val[p] = ratings[row[p]] - mu - O[other[p] * K];
    for (let r = 0; r < n; r++) {
      accumulate(other, val, design, ptr[r], ptr[r + 1], conditional.P, conditional.b);
      conditional.draw(alpha, lam, mean, X, r * K);
    }
  };

  const predictRow = (i: number) => {
    const u = userIdx[i] * K;
    const m = itemIdx[i] * K;
    let s = mu + U[u] + V[m];
    for (let f = 1; f < K; f++) s += U[u + f] * V[m + f];
    return s;
  };

  const predictions = new Float64Array(queryRows.length);
  const userMean = new Float64Array(U.length);
  const itemMean = new Float64Array(V.length);
  let kept = 0;
  for (let it = 0; it < options.samples; it++) {
    drawHyper(U, nUsers, K, lamU, meanU, normal);
    drawHyper(V, nItems, K, lamV, meanV, normal);
    sweep(byUser, U, V, nItems, lamU, meanU, nUsers);
    sweep(byItem, V, U, nUsers, lamV, meanV, nItems);
    let sse = 0;
    for (let k = 0; k < trainRows.length; k++) {
      const d = ratings[trainRows[k]] - predictRow(trainRows[k]);
      sse += d * d;
    }
    alpha = normal.gamma(1 + trainRows.length / 2) / (1 + sse / 2);
    if (it >= options.burnIn) {
      kept++;
      for (let k = 0; k < queryRows.length; k++) predictions[k] += predictRow(queryRows[k]);
      addInto(userMean, U);
      addInto(itemMean, V);
    }
    await checkpoint(options.signal);
  }
  const scale = 1 / Math.max(1, kept);
  for (const sums of [predictions, userMean, itemMean]) scaleInPlace(sums, scale);
  return { predictions, mu, userMean, itemMean, userCount: rowCounts(byUser, nUsers), itemCount: rowCounts(byItem, nItems) };
}

/** The mean rating of `rows` (0 without rows). */
function meanOf(ratings: Float32Array, rows: Int32Array): number {
  let sum = 0;
  for (let k = 0; k < rows.length; k++) sum += ratings[rows[k]];
  return rows.length > 0 ? sum / rows.length : 0;
}

/** `n` rows of a zero bias and small normal factors, drawn in row-major order. */
function initialFactors(n: number, K: number, normal: Normal): Float64Array {
  const X = new Float64Array(n * K);
  for (let i = 0; i < X.length; i++) X[i] = i % K === 0 ? 0 : 0.1 * normal.next();
  return X;
}

/**
 * One row's Gaussian conditional: `P` and `b` hold the accumulated normal equations of the row's
 * ratings (lower triangle), `draw` adds the noise precision and the prior and samples the row.
 */
class RowConditional {
  readonly P: Float64Array;
  readonly b: Float64Array;
  private readonly w: Float64Array;
  constructor(
    private readonly K: number,
    private readonly normal: Normal,
  ) {
    this.P = new Float64Array(K * K);
    this.b = new Float64Array(K);
    this.w = new Float64Array(K);
  }

  /** Writes a draw of the row into X[xo .. xo + K). */
  draw(alpha: number, lam: Float64Array, mean: Float64Array, X: Float64Array, xo: number): void {
    const { K, P, b, w } = this;
    for (let a = 0; a < K; a++) {
      b[a] = alpha * b[a] + lam[a] * mean[a];
      for (let c = 0; c <= a; c++) P[a * K + c] *= alpha;
      P[a * K + a] += lam[a];
    }
    // In-place Cholesky P = L L' (lower triangle); every diagonal is >= lam > 0.
    for (let j = 0; j < K; j++) {
      let s = P[j * K + j];
      for (let k = 0; k < j; k++) s -= P[j * K + k] * P[j * K + k];
      const d = Math.sqrt(s);
      P[j * K + j] = d;
      for (let i = j + 1; i < K; i++) {
        let t = P[i * K + j];
        for (let k = 0; k < j; k++) t -= P[i * K + k] * P[j * K + k];
        P[i * K + j] = t / d;
      }
    }
    // x = P^-1 b + L'^-1 e: solve L w = b, add e ~ N(0, I), solve L' x = w + e.
    for (let i = 0; i < K; i++) {
      let t = b[i];
      for (let k = 0; k < i; k++) t -= P[i * K + k] * w[k];
      w[i] = t / P[i * K + i];
    }
    for (let i = 0; i < K; i++) w[i] += this.normal.next();
    for (let i = K - 1; i >= 0; i--) {
      let t = w[i];
      for (let k = i + 1; k < K; k++) t -= P[k * K + i] * X[xo + k];
      X[xo + i] = t / P[i * K + i];
    }
  }
}

/** Normal-Gamma conditionals of each coordinate's mean and precision (prior: mean 0, Gamma(1, 1)). */
function drawHyper(X: Float64Array, n: number, K: number, lam: Float64Array, mean: Float64Array, normal: Normal): void {
  for (let f = 0; f < K; f++) {
    let s = 0;
    for (let r = 0; r < n; r++) s += X[r * K + f];
    mean[f] = s / (n + 1) + normal.next() / Math.sqrt(lam[f] * (n + 1));
    let ss = 0;
    for (let r = 0; r < n; r++) {
      const d = X[r * K + f] - mean[f];
      ss += d * d;
    }
    lam[f] = normal.gamma(1 + (n + 1) / 2) / (1 + (ss + mean[f] * mean[f]) / 2);
  }
}

function addInto(sums: Float64Array, values: Float64Array): void {
  for (let i = 0; i < sums.length; i++) sums[i] += values[i];
}

function scaleInPlace(values: Float64Array, scale: number): void {
  for (let i = 0; i < values.length; i++) values[i] *= scale;
}

/** Training ratings per row of a grouping. */
function rowCounts(side: Side, n: number): Int32Array {
  const count = new Int32Array(n);
  for (let r = 0; r < n; r++) count[r] = side.ptr[r + 1] - side.ptr[r];
  return count;
}
