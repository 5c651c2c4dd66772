/**
 * The Gaussian pieces of the Gibbs sampler: seeded standard normal and Gamma draws, one row's
 * multivariate Gaussian conditional (normal equations plus prior, drawn through its Cholesky
 * factor), the Normal-Gamma draw of a coordinate's prior mean and precision, and the draw of a
 * scalar bias group's values and precision.
 */

/** Standard normal draws (Marsaglia's polar method) from a seeded uniform stream. */
export class Normal {
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

/**
 * One row's Gaussian conditional: `P` and `b` hold the accumulated normal equations of the row's
 * ratings (lower triangle), `draw` adds the noise precision and the prior and samples the row.
 */
export class RowConditional {
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
export function drawHyper(X: Float64Array, n: number, K: number, lam: Float64Array, mean: Float64Array, normal: Normal): void {
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

/**
 * Draws every value of a bias group (b_g ~ N(0, 1/lam) a priori, lam ~ Gamma(1, 1)) from its
 * conditional given the partial residuals: with s_g = sum over the group's rows of (r - rest of
 * the prediction) and n_g its rows, b_g | . ~ N(alpha s_g / (lam + alpha n_g), 1 / (lam + alpha n_g)).
 * Empty groups stay 0. Then lam | b ~ Gamma(1 + G/2, rate 1 + sum b_g^2 / 2) over the G non-empty
 * groups. Returns the new lam.
 */
export function drawBiasGroup(
  values: Float64Array,
  sums: Float64Array,
  counts: Int32Array,
  alpha: number,
  lam: number,
  normal: Normal,
): number {
  let groups = 0;
  let ss = 0;
  for (let g = 0; g < values.length; g++) {
    if (counts[g] === 0) {
      values[g] = 0;
      continue;
    }
    const precision = lam + alpha * counts[g];
    const b = (alpha * sums[g]) / precision + normal.next() / Math.sqrt(precision);
    values[g] = b;
    groups++;
    ss += b * b;
  }
  return normal.gamma(1 + groups / 2) / (1 + ss / 2);
}
