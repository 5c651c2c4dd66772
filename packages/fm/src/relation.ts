/**
 * Ratings grouped by user or by movie, and the implicit-feedback relation block over such a
 * grouping (SVD++'s user side and its "flipped" movie side, as myFM's relation blocks, Rendle 2019).
 *
 * The owner side's effective vector gains a normalised sum over the members it rated:
 *   users:  p_u + Y_u,  Y_u = |N(u)|^-1/2 sum_{j in N(u)} y_j   (members: the movies u rated)
 *   movies: q_i + Z_i,  Z_i = |U(i)|^-1/2 sum_{v in U(i)} z_v   (members: the users who rated i)
 * A row (o, m) predicts ... + (owner vector) . (partner vector) with partner = the other side's
 * effective vector. Member w's coordinate f enters the rows of every owner o that has w, through
 * c_o w_f P_{m,f} (c_o = |members(o)|^-1/2, P the partner vectors). Its Gaussian conditional:
 *   precision = lam_f + alpha sum_{o has w} c_o^2 S_o,        S_o = sum_{m in rows(o)} P_{m,f}^2
 *   mean * precision = lam_f mu_f + alpha sum_{o has w} c_o (T_o + c_o w_f S_o),
 *                                                            T_o = sum_{m in rows(o)} P_{m,f} e_{o,m}
 * with e the current residuals (r - prediction). After a draw moves w_f by d, every such owner's
 * residuals move by -c_o d P_{m,f}, so T_o -= c_o d S_o; the residuals themselves are brought up to
 * date once per coordinate. Each coordinate costs a fixed number of passes over the ratings, so a
 * sweep is O(N rank), not O(N |N(u)|).
 */
import type { Normal } from "./gaussian.js";

export interface Side {
  ptr: Int32Array;
  /** The other side's index and the rating's row, per entry. */
  other: Int32Array;
  row: Int32Array;
  /** Per entry: scratch for the row's target of a block draw. */
  val: Float32Array;
}

export function groupBy(index: Int32Array, otherIndex: Int32Array, rows: Int32Array, n: number): Side {
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

/** Training ratings per row of a grouping. */
export function rowCounts(side: Side): Int32Array {
  const n = side.ptr.length - 1;
  const count = new Int32Array(n);
  for (let r = 0; r < n; r++) count[r] = side.ptr[r + 1] - side.ptr[r];
  return count;
}

/** One relation block: the members' vectors, the owners' normalised sums, and their priors. */
export class Relation {
  /** Per member, its vector (nMembers x rank): y_j, or z_v. */
  readonly W: Float64Array;
  /** Per owner, c_o sum_{w in members(o)} W_w (nOwners x rank). */
  readonly sum: Float64Array;
  /** Per owner, c_o = |members(o)|^-1/2 (0 without members). */
  readonly norm: Float64Array;
  readonly lam: Float64Array;
  readonly mean: Float64Array;
  private readonly S: Float64Array;
  private readonly T: Float64Array;
  private readonly delta: Float64Array;
  /** Entries visited since construction (the cost the tests hold linear in the ratings). */
  visits = 0;

  /**
   * `owners` groups the training rows by owner (its `other` is the member, who is also the row's
   * partner); `members` groups them by member (its `other` is the owner).
   */
  constructor(
    readonly owners: Side,
    readonly members: Side,
    readonly rank: number,
  ) {
    const nOwners = owners.ptr.length - 1;
    const nMembers = members.ptr.length - 1;
    this.W = new Float64Array(nMembers * rank);
    this.sum = new Float64Array(nOwners * rank);
    this.norm = new Float64Array(nOwners);
    for (let o = 0; o < nOwners; o++) {
      const n = owners.ptr[o + 1] - owners.ptr[o];
      this.norm[o] = n > 0 ? 1 / Math.sqrt(n) : 0;
    }
    this.lam = new Float64Array(rank).fill(1);
    this.mean = new Float64Array(rank);
    this.S = new Float64Array(nOwners);
    this.T = new Float64Array(nOwners);
    this.delta = new Float64Array(nOwners);
  }

  /**
   * Draws every member vector coordinate by coordinate given the partner vectors `P` (nPartners x
   * rank) and the residuals `e` (by rating row, current on entry and on return); `sum` follows.
   */
  sample(P: Float64Array, e: Float64Array, alpha: number, normal: Normal): void {
    const { owners, members, rank, W, sum, norm, lam, mean, S, T, delta } = this;
    const nOwners = norm.length;
    const nMembers = members.ptr.length - 1;
    for (let f = 0; f < rank; f++) {
      for (let o = 0; o < nOwners; o++) {
        let s = 0;
        let t = 0;
        for (let p = owners.ptr[o]; p < owners.ptr[o + 1]; p++) {
          const x = P[owners.other[p] * rank + f];
          s += x * x;
          t += x * e[owners.row[p]];
        }
        S[o] = s;
        T[o] = t;
        delta[o] = 0;
      }
      for (let w = 0; w < nMembers; w++) {
        const start = members.ptr[w];
        const end = members.ptr[w + 1];
        const old = W[w * rank + f];
        let precision = lam[f];
        let num = lam[f] * mean[f];
        for (let p = start; p < end; p++) {
          const o = members.other[p];
          const c = norm[o];
          precision += alpha * c * c * S[o];
          num += alpha * c * (T[o] + c * old * S[o]);
        }
        const value = num / precision + normal.next() / Math.sqrt(precision);
        const d = value - old;
        W[w * rank + f] = value;
        for (let p = start; p < end; p++) {
          const o = members.other[p];
          const cd = norm[o] * d;
          T[o] -= cd * S[o];
          delta[o] += cd;
        }
      }
      for (let o = 0; o < nOwners; o++) {
        const dd = delta[o];
        if (dd === 0) continue;
        sum[o * rank + f] += dd;
        this.visits += owners.ptr[o + 1] - owners.ptr[o];
        for (let p = owners.ptr[o]; p < owners.ptr[o + 1]; p++) e[owners.row[p]] -= dd * P[owners.other[p] * rank + f];
      }
      this.visits += owners.row.length + 2 * members.row.length;
    }
  }
}
