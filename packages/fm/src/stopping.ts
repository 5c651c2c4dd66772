/**
 * The sample count chosen by the data: after burn-in, every `every` kept samples, the RMSE of the
 * running posterior-mean prediction of held-out rows is checked; sampling stops once that RMSE has
 * not improved on its best by more than `tolerance` for `patience` checks in a row (or at the cap).
 * The running mean's error falls while the chain still explores and flattens once more samples
 * only average noise, so the stopping sample is where extra sweeps stop paying.
 */

/** Held-out rows (dense indices, with their ratings) and how stopping reads them. */
export interface ValidationRows {
  userIdx: Int32Array;
  itemIdx: Int32Array;
  ratings: Float32Array;
  /** Seconds, when the fit uses time effects. */
  timestamps?: ArrayLike<number>;
  /** Kept samples between checks (default STOP_DEFAULTS.every). */
  every?: number;
  /** Checks without improvement before stopping (default STOP_DEFAULTS.patience). */
  patience?: number;
  /** The RMSE gain that counts as an improvement (default STOP_DEFAULTS.tolerance). */
  tolerance?: number;
}

export const STOP_DEFAULTS = { every: 5, patience: 3, tolerance: 2e-4 } as const;

export class ValidationStop {
  private readonly sums: Float64Array;
  private kept = 0;
  private best = Number.POSITIVE_INFINITY;
  private stale = 0;
  private readonly every: number;
  private readonly patience: number;
  private readonly tolerance: number;
  /** The RMSE at each check, in order. */
  readonly history: number[] = [];

  constructor(readonly rows: ValidationRows) {
    this.sums = new Float64Array(rows.ratings.length);
    this.every = rows.every ?? STOP_DEFAULTS.every;
    this.patience = rows.patience ?? STOP_DEFAULTS.patience;
    this.tolerance = rows.tolerance ?? STOP_DEFAULTS.tolerance;
  }

  /** Adds one kept sample's predictions (`predict(k)` for the k-th row); true when sampling should stop. */
  add(predict: (k: number) => number): boolean {
    const { sums, rows } = this;
    for (let k = 0; k < sums.length; k++) sums[k] += predict(k);
    this.kept++;
    if (this.kept % this.every !== 0 || sums.length === 0) return false;
    let se = 0;
    for (let k = 0; k < sums.length; k++) {
      const d = sums[k] / this.kept - rows.ratings[k];
      se += d * d;
    }
    const rmse = Math.sqrt(se / sums.length);
    this.history.push(rmse);
    if (rmse < this.best - this.tolerance) {
      this.best = rmse;
      this.stale = 0;
    } else if (++this.stale >= this.patience) return true;
    if (rmse < this.best) this.best = rmse;
    return false;
  }
}
