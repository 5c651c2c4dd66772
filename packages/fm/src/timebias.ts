/**
 * Time effects of the Bayesian model, three bias groups added to a rating's prediction:
 *   b_bin(t)        a global bias per time bin (TIME_BINS equal bins over the training range),
 *   b_{i,bin(t)}    a movie x time-bin bias (a movie's drift, timeSVD++'s b_{i,Bin(t)}),
 *   b_{u,day(t)}    a per-user day bias (timeSVD++'s b_{u,t}: a user's mood on one day).
 * Each is a Gaussian-conditional group with its own precision (see `drawBiasGroup`); one sweep
 * costs O(N). A time outside the training range falls in the nearest bin; a user's day with fewer
 * than two training ratings has no day bias (one rating's bias and its noise cannot be told apart). A pair scored without a time is scored at the end of the
 * training range (its last bin, no day bias): "now" for the fit.
 */
import { drawBiasGroup, type Normal } from "./gaussian.js";

export const TIME_BINS = 30;
const DAY_SECONDS = 86_400;
/** Days are offset so that a (user, day) key stays a non-negative exact integer. */
const DAY_OFFSET = 5_000_000;
const DAY_SPAN = 2 * DAY_OFFSET;

/** The time effects' posterior means, on the fit's user and movie rows. */
export interface TimeTables {
  /** The first bin starts at `start` (seconds); bins are `binSeconds` wide. */
  start: number;
  binSeconds: number;
  bins: number;
  /** Per bin. */
  global: Float32Array;
  /** Per movie row, `bins` values. */
  itemBin: Float32Array;
  /** User-day biases sorted by (user row, day): day = floor(t / 86400). */
  dayUser: Int32Array;
  day: Int32Array;
  dayBias: Float32Array;
}

export function timeBin(t: number, start: number, binSeconds: number, bins: number): number {
  const b = Math.floor((t - start) / binSeconds);
  return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

export function dayOf(t: number): number {
  return Math.floor(t / DAY_SECONDS);
}

/** The index of (user, day) among the tables' sorted pairs, or -1. */
function findDay(t: TimeTables, user: number, day: number): number {
  let lo = 0;
  let hi = t.dayUser.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (t.dayUser[mid] < user || (t.dayUser[mid] === user && t.day[mid] < day)) lo = mid + 1;
    else hi = mid;
  }
  return lo < t.dayUser.length && t.dayUser[lo] === user && t.day[lo] === day ? lo : -1;
}

/** The time effects' part of the prediction of (user row, movie row) at `timestamp` (undefined: the end of the range). */
export function timeBias(t: TimeTables, user: number, item: number, timestamp: number | undefined): number {
  const bin = timestamp === undefined ? t.bins - 1 : timeBin(timestamp, t.start, t.binSeconds, t.bins);
  let s = t.global[bin] + t.itemBin[item * t.bins + bin];
  if (timestamp !== undefined) {
    const at = findDay(t, user, dayOf(timestamp));
    if (at >= 0) s += t.dayBias[at];
  }
  return s;
}

/** Rows located in the three groups: per row a bin, a movie-bin cell and a user-day group (-1 if none). */
export interface TimeIndex {
  bin: Int32Array;
  cell: Int32Array;
  day: Int32Array;
}

/** The sampler's state of the three groups over one fit's training rows. */
export class TimeEffects {
  readonly start: number;
  readonly binSeconds: number;
  readonly bins = TIME_BINS;
  readonly values: Float64Array[];
  readonly lam = [1, 1, 1];
  readonly means: Float64Array[];
  private readonly dayGroup = new Map<number, number>();
  private readonly counts: Int32Array[];
  private readonly sums: Float64Array[];
  /** The training rows located, and each user-day group's (user, day). */
  readonly train: TimeIndex;
  private readonly groupUser: number[] = [];
  private readonly groupDay: number[] = [];

  constructor(
    timestamps: ArrayLike<number>,
    userIdx: Int32Array,
    itemIdx: Int32Array,
    readonly trainRows: Int32Array,
    nItems: number,
  ) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < trainRows.length; k++) {
      const t = timestamps[trainRows[k]];
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    this.start = trainRows.length > 0 ? lo : 0;
    this.binSeconds = trainRows.length > 0 ? (hi - lo + 1) / this.bins : 1;
    const perDay = new Map<number, number>();
    for (const k of trainRows) {
      const key = userIdx[k] * DAY_SPAN + dayOf(timestamps[k]) + DAY_OFFSET;
      perDay.set(key, (perDay.get(key) ?? 0) + 1);
    }
    for (const k of trainRows) {
      const key = userIdx[k] * DAY_SPAN + dayOf(timestamps[k]) + DAY_OFFSET;
      if (this.dayGroup.has(key) || (perDay.get(key) ?? 0) < 2) continue;
      this.dayGroup.set(key, this.groupUser.length);
      this.groupUser.push(userIdx[k]);
      this.groupDay.push(dayOf(timestamps[k]));
    }
    const sizes = [this.bins, nItems * this.bins, this.groupUser.length];
    this.values = sizes.map((n) => new Float64Array(n));
    this.means = sizes.map((n) => new Float64Array(n));
    this.sums = sizes.map((n) => new Float64Array(n));
    this.counts = sizes.map((n) => new Int32Array(n));
    this.train = this.locate(userIdx, itemIdx, timestamps, trainRows);
    const index = [this.train.bin, this.train.cell, this.train.day];
    for (let g = 0; g < 3; g++) for (const x of index[g]) if (x >= 0) this.counts[g][x]++;
  }

  /** Locates `rows` (default: every row of the arrays), in that order. */
  locate(userIdx: Int32Array, itemIdx: Int32Array, timestamps: ArrayLike<number>, rows?: Int32Array): TimeIndex {
    const n = rows ? rows.length : userIdx.length;
    const out = { bin: new Int32Array(n), cell: new Int32Array(n), day: new Int32Array(n) };
    for (let k = 0; k < n; k++) {
      const i = rows ? rows[k] : k;
      const t = timestamps[i];
      const bin = timeBin(t, this.start, this.binSeconds, this.bins);
      out.bin[k] = bin;
      out.cell[k] = itemIdx[i] * this.bins + bin;
      out.day[k] = this.dayGroup.get(userIdx[i] * DAY_SPAN + dayOf(t) + DAY_OFFSET) ?? -1;
    }
    return out;
  }

  /** The time part of the prediction of the k-th located row. */
  bias(at: TimeIndex, k: number): number {
    const [g, c, d] = this.values;
    return g[at.bin[k]] + c[at.cell[k]] + (at.day[k] >= 0 ? d[at.day[k]] : 0);
  }

  /** Draws the three groups in turn; `e` (by rating row, current on entry and on return) is the residual. */
  sample(e: Float64Array, alpha: number, normal: Normal): void {
    const { trainRows } = this;
    const index = [this.train.bin, this.train.cell, this.train.day];
    for (let g = 0; g < 3; g++) {
      const at = index[g];
      const values = this.values[g];
      const sums = this.sums[g].fill(0);
      for (let k = 0; k < trainRows.length; k++) if (at[k] >= 0) sums[at[k]] += e[trainRows[k]] + values[at[k]];
      const old = Float64Array.from(values);
      this.lam[g] = drawBiasGroup(values, sums, this.counts[g], alpha, this.lam[g], normal);
      for (let k = 0; k < trainRows.length; k++) if (at[k] >= 0) e[trainRows[k]] -= values[at[k]] - old[at[k]];
    }
  }

  /** Adds the current values into the posterior-mean sums. */
  keep(): void {
    for (let g = 0; g < 3; g++) for (let x = 0; x < this.values[g].length; x++) this.means[g][x] += this.values[g][x];
  }

  /** The posterior means over `kept` samples, as tables (user-day pairs sorted). */
  tables(kept: number): TimeTables {
    const s = 1 / Math.max(1, kept);
    const order = this.groupUser
      .map((_, k) => k)
      .sort((a, b) => this.groupUser[a] - this.groupUser[b] || this.groupDay[a] - this.groupDay[b]);
    return {
      start: this.start,
      binSeconds: this.binSeconds,
      bins: this.bins,
      global: Float32Array.from(this.means[0], (v) => v * s),
      itemBin: Float32Array.from(this.means[1], (v) => v * s),
      dayUser: Int32Array.from(order, (k) => this.groupUser[k]),
      day: Int32Array.from(order, (k) => this.groupDay[k]),
      dayBias: Float32Array.from(order, (k) => this.means[2][k] * s),
    };
  }
}

/** Time tables re-indexed onto the kept user rows `u` and movie rows `m` (a dropped user loses its day biases). */
export function timeTablesOn(t: TimeTables, u: number[], m: number[]): TimeTables {
  const userRow = new Map(u.map((old, k) => [old, k]));
  const itemBin = new Float32Array(m.length * t.bins);
  m.forEach((old, k) => itemBin.set(t.itemBin.subarray(old * t.bins, (old + 1) * t.bins), k * t.bins));
  const keep: number[] = [];
  for (let k = 0; k < t.dayUser.length; k++) if (userRow.has(t.dayUser[k])) keep.push(k);
  return {
    ...t,
    itemBin,
    dayUser: Int32Array.from(keep, (k) => userRow.get(t.dayUser[k]) as number),
    day: Int32Array.from(keep, (k) => t.day[k]),
    dayBias: Float32Array.from(keep, (k) => t.dayBias[k]),
  };
}
