/**
 * The `auto` feature groups of the bayes model, decided by held-out error on the first fold of
 * the out-of-fold scheme (oof.ts calls `selectGroups` before its fold fits and reuses the first
 * fold's fit of the chosen groups when it made one).
 */
import { fitOptions, type GibbsData, type GibbsFeatures, type GibbsFit } from "./bayes.js";
import { gibbsFits } from "./parallel.js";

/** The groups `select` can decide. */
export const SELECTABLE_GROUPS = ["implicitUser", "implicitMovie", "time"] as const;
export type SelectableGroup = (typeof SELECTABLE_GROUPS)[number];

/** One group's trial on the first fold: held-out RMSE without and with it, and whether it was kept. */
export interface GroupTrial {
  group: SelectableGroup;
  rmseWithout: number;
  rmseWith: number;
  /** Standard error of the paired difference of mean squared errors (without - with). */
  se: number;
  kept: boolean;
}

/** What the trial fits need: the fits' settings (as `fitOptions` takes them), the forced groups, threads and signal. */
export type SelectOptions = Parameters<typeof fitOptions>[0] & { threads?: number };

/**
 * How many standard errors of the paired difference a group's gain must clear to be kept. Half
 * of one, not two: the trial fits two thirds of the training part, and the implicit groups are
 * worth more the more ratings a fit has (ml-latest-small's movie side: 0.7% out of fold, 1.7% on
 * the test rows from the full fit, the same data), so the trial understates them; at 2 the movie
 * side was left out on two folds of five where it is worth 2%. The groups that cost (the implicit
 * movie side on the synthetic kinds, time where ratings do not move with it) stay far below 0
 * (tools/bench/results/2026-12-07-quality-select.md lists every trial's z).
 */
export const SELECT_Z = 0.5;

/**
 * Decides the `auto` groups on the first fold, as a cross-validated model choice: fits that fold's
 * training rows without any of them (the forced groups only) and with each one added alone, side
 * by side and with the same seed, then keeps a group when its held-out squared error is lower by
 * more than SELECT_Z standard errors of the paired per-row difference:
 *   d_i = (p0_i - r_i)^2 - (pg_i - r_i)^2,  keep g  iff  mean(d) > SELECT_Z * sd(d) / sqrt(n).
 * A group without signal costs error on data it does not describe (the benchmark's synthetic
 * kinds without time or implicit structure lost up to 0.007 RMSE with one on), and gains on data
 * it does (ml-latest-small -0.018 with the movie side): so no fixed choice wins everywhere, and
 * the data chooses. Returns the chosen groups, the trials, and the first fold's fit of the chosen
 * groups when it is one of those made (no group, or exactly one kept), for reuse.
 */
export async function selectGroups(
  data: GibbsData,
  rows: { trainRows: Int32Array; queryRows: Int32Array },
  options: SelectOptions,
  select: readonly SelectableGroup[],
): Promise<{ features: GibbsFeatures; trials: GroupTrial[]; fold0: { fit: GibbsFit; seconds: number } | undefined }> {
  const forced: GibbsFeatures = { ...(options.features ?? {}) };
  for (const g of select) forced[g] = false;
  const candidates: GibbsFeatures[] = [forced, ...select.map((g) => ({ ...forced, [g]: true }))];
  const seconds: number[] = [];
  const fits = await gibbsFits(
    data,
    candidates.map((features) => ({ ...rows, options: fitOptions({ ...options, features }, data, rows.queryRows, 0, []) })),
    options.threads ?? 1,
    options.signal,
    (j, _fit, s) => {
      seconds[j] = s;
    },
  );
  const n = rows.queryRows.length;
  const err = (fit: GibbsFit, q: number) => (fit.predictions[q] - data.ratings[rows.queryRows[q]]) ** 2;
  const rmse = (fit: GibbsFit) => {
    let s = 0;
    for (let q = 0; q < n; q++) s += err(fit, q);
    return Math.sqrt(s / Math.max(1, n));
  };
  const trials = select.map((group, j): GroupTrial => {
    const base = fits[0];
    const withG = fits[j + 1];
    let sum = 0;
    let sumSq = 0;
    for (let q = 0; q < n; q++) {
      const diff = err(base, q) - err(withG, q);
      sum += diff;
      sumSq += diff * diff;
    }
    const mean = sum / Math.max(1, n);
    const se = n > 1 ? Math.sqrt(Math.max(0, sumSq / n - mean * mean) / (n - 1)) : Number.POSITIVE_INFINITY;
    const rmseWithout = rmse(base);
    const rmseWith = rmse(withG);
    return { group, rmseWithout, rmseWith, se, kept: mean > SELECT_Z * se };
  });
  const features: GibbsFeatures = { ...forced };
  for (const t of trials) if (t.kept) features[t.group] = true;
  const kept = trials.filter((t) => t.kept);
  const at = kept.length === 0 ? 0 : kept.length === 1 ? 1 + select.indexOf(kept[0].group) : -1;
  const fold0 = at >= 0 ? { fit: fits[at], seconds: seconds[at] } : undefined;
  return { features, trials, fold0 };
}
