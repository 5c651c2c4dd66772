/**
 * Ordinal (probit) output for the sampler, by Albert and Chib's data augmentation. The ratings'
 * distinct values v_0 < ... < v_{C-1} are ordered classes; a latent z = f(x) + eps, eps ~ N(0, 1),
 * falls in class k when c_k <= z < c_{k+1} (c_0 = -inf, c_C = +inf). Each sweep draws every
 * free cut-point by a Metropolis step with z integrated out, then every training row's z from
 * N(f, 1) truncated to its class's interval (the cut-point nearest 0 stays at its start). The model's part f is then fitted to z with the noise precision fixed at 1.
 * A pair's prediction is its expected rating, sum_k v_k (Phi(c_{k+1} - f) - Phi(c_k - f)).
 */
import type { Normal } from "./gaussian.js";

/** The ordinal output's posterior means: the class values and their cut-points (C - 1 finite ones). */
export interface OrdinalTables {
  levels: Float32Array;
  cuts: Float32Array;
}

/** Phi(x), the standard normal distribution function (erfc by Numerical Recipes' Chebyshev fit, |rel. error| < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(poly);
  return x >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

/** Phi^-1(p) for p in (0, 1) (Acklam's rational approximation, |rel. error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/** A draw of N(0, 1) truncated to [lo, hi), by inverting the distribution function on the tail it lies in. */
function truncatedNormal(lo: number, hi: number, uniform: () => number): number {
  // Above 0, draw -x from the mirrored interval: lower-tail probabilities keep their precision.
  if (lo > 0) return -truncatedNormal(-hi, -lo, uniform);
  const a = normalCdf(lo);
  const b = normalCdf(hi);
  if (!(b > a)) return Number.isFinite(lo) ? lo : hi;
  const p = Math.min(1 - 2 ** -53, Math.max(1e-300, a + uniform() * (b - a)));
  return Math.min(Math.max(normalQuantile(p), lo), hi);
}

export class Ordinal {
  readonly levels: Float64Array;
  /** C + 1 bounds: -inf, c_1 .. c_{C-1}, +inf. */
  readonly cuts: Float64Array;
  private readonly cutSums: Float64Array;
  /** Per cut-point, the Metropolis step and how many steps it took. */
  private readonly step: Float64Array;
  private readonly steps: Float64Array;
  /** Per rating row, its class (training rows only). */
  private readonly classOf: Int32Array;
  /** The training rows grouped by class (rows of class k: classRows[classPtr[k] .. classPtr[k + 1])). */
  private readonly classPtr: Int32Array;
  private readonly classRows: Int32Array;
  /** The cut-point nearest 0, kept at its start: it fixes the location the biases would otherwise share with the cut-points. */
  private readonly fixed: number;

  constructor(
    ratings: Float32Array,
    readonly trainRows: Int32Array,
  ) {
    const values = [...new Set(Array.from(trainRows, (i) => ratings[i]))].sort((x, y) => x - y);
    this.levels = Float64Array.from(values);
    this.classOf = new Int32Array(ratings.length);
    const at = new Map(values.map((v, k) => [v, k]));
    for (const i of trainRows) {
      this.classOf[i] = at.get(ratings[i]) as number;
    }
    this.classPtr = new Int32Array(values.length + 1);
    for (const i of trainRows) this.classPtr[this.classOf[i] + 1]++;
    for (let k = 0; k < values.length; k++) this.classPtr[k + 1] += this.classPtr[k];
    const cursor = this.classPtr.slice(0, values.length);
    this.classRows = new Int32Array(trainRows.length);
    for (const i of trainRows) this.classRows[cursor[this.classOf[i]]++] = i;
    // Start where a regression of the ratings would put them: midway between levels, centred on
    // the mean and scaled by 0.8 of the ratings' spread (the noise share rating models leave).
    let sum = 0;
    let ss = 0;
    for (const i of trainRows) sum += ratings[i];
    const mean = sum / Math.max(1, trainRows.length);
    for (const i of trainRows) ss += (ratings[i] - mean) ** 2;
    const scale = 0.8 * Math.sqrt(ss / Math.max(1, trainRows.length)) || 1;
    this.cuts = new Float64Array(values.length + 1);
    this.cuts[0] = Number.NEGATIVE_INFINITY;
    this.cuts[values.length] = Number.POSITIVE_INFINITY;
    this.fixed = 1;
    for (let k = 1; k < values.length; k++) {
      this.cuts[k] = ((values[k - 1] + values[k]) / 2 - mean) / scale;
      if (Math.abs(this.cuts[k]) < Math.abs(this.cuts[this.fixed])) this.fixed = k;
    }
    this.cutSums = new Float64Array(this.cuts.length);
    this.step = new Float64Array(this.cuts.length).fill(0.3);
    this.steps = new Float64Array(this.cuts.length);
  }

  /**
   * Draws the cut-points, then each training row's latent z into `target`, given the current
   * prediction f = target - e; leaves e = z - f. Each free cut-point takes one random-walk
   * Metropolis step on the likelihood with z integrated out (Cowles 1996, as myFM does; Albert and
   * Chib's uniform draw between neighbouring z's barely moves with many ratings):
   *   log L = sum over the rows of classes k-1 and k of log(Phi(c_{k+1} - f) - Phi(c_k - f)),
   * an order-breaking proposal being rejected; the step adapts towards 44% acceptance.
   */
  sample(target: Float64Array, e: Float64Array, normal: Normal): void {
    const { trainRows, classOf, cuts } = this;
    const C = this.levels.length;
    for (let k = 1; k < C; k++) {
      if (k === this.fixed) continue;
      const proposal = cuts[k] + this.step[k] * normal.next();
      let accept = proposal > cuts[k - 1] && proposal < cuts[k + 1];
      if (accept) {
        let delta = 0;
        for (let p = this.classPtr[k - 1]; p < this.classPtr[k + 1]; p++) {
          const i = this.classRows[p];
          const c = classOf[i];
          const f = target[i] - e[i];
          const lo = c === k ? proposal : cuts[c];
          const hi = c === k ? cuts[k + 1] : proposal;
          delta += Math.log(classProbability(lo, hi, f)) - Math.log(classProbability(cuts[c], cuts[c + 1], f));
        }
        accept = Math.log(normal.uniform()) < delta;
      }
      if (accept) cuts[k] = proposal;
      this.step[k] *= Math.exp(((accept ? 1 : 0) - 0.44) / Math.sqrt(++this.steps[k]));
    }
    for (const i of trainRows) {
      const f = target[i] - e[i];
      const k = classOf[i];
      const eps = truncatedNormal(cuts[k] - f, cuts[k + 1] - f, normal.uniform);
      target[i] = f + eps;
      e[i] = eps;
    }
  }

  /** The expected rating at latent prediction f. */
  expected(f: number): number {
    return expectedRating(this.levels, this.cuts, f);
  }

  keep(): void {
    for (let k = 1; k < this.cuts.length - 1; k++) this.cutSums[k] += this.cuts[k];
  }

  tables(kept: number): OrdinalTables {
    const s = 1 / Math.max(1, kept);
    return {
      levels: Float32Array.from(this.levels),
      cuts: Float32Array.from(this.cutSums.subarray(1, this.cuts.length - 1), (v) => v * s),
    };
  }
}

/** Phi(hi - f) - Phi(lo - f), from the tail where it keeps its precision, floored above 0. */
function classProbability(lo: number, hi: number, f: number): number {
  const p = lo - f > 0 ? normalCdf(f - lo) - normalCdf(f - hi) : normalCdf(hi - f) - normalCdf(lo - f);
  return Math.max(p, 1e-300);
}

/** sum_k v_k (Phi(c_{k+1} - f) - Phi(c_k - f)) over the bounds -inf, cuts..., +inf. */
export function expectedRating(levels: ArrayLike<number>, cuts: ArrayLike<number>, f: number): number {
  const C = levels.length;
  // With bounds, cuts has C + 1 entries; the tables keep only the C - 1 finite ones.
  const finite = cuts.length === C - 1;
  const cut = (k: number) => (finite ? cuts[k - 1] : cuts[k]);
  let s = 0;
  let below = 0;
  for (let k = 0; k < C; k++) {
    const upper = k === C - 1 ? 1 : normalCdf(cut(k + 1) - f);
    s += levels[k] * (upper - below);
    below = upper;
  }
  return s;
}
