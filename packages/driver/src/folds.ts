/**
 * k-fold cross-validation in `ms run`: with split=kfold and no `fold`, the pipeline runs once per
 * fold (fold = 1..folds), each fold's parameters resolved like a plain run's. The parent run gets
 * the mean and the sample standard deviation (n - 1 in the denominator) of every step metric over
 * the folds; Surprise's `cross_validate` prints `np.std`, the population one (n), which is smaller
 * by a factor sqrt((k - 1) / k).
 */
import { buildCatalog, formatTable, resolveParams, type RawParams, type Resolution, type Step } from "@ms/contracts";
import type { StepReport } from "./step-run.js";

/** One fold of a k-fold run: its child run (grouping its step runs) and its steps, as a plain run's report holds them. */
export interface FoldReport {
  fold: number;
  runId: string;
  steps: StepReport[];
}

/** The resolutions a run needs: one, or with split=kfold and no fold, one per fold. */
export function foldResolutions(steps: readonly Step[], raw: RawParams): { resolutions: Resolution[]; kfold: boolean } {
  const declaresFold = buildCatalog(steps).some((s) => s.name === "fold");
  if (!declaresFold || raw.get("split")?.trim() !== "kfold" || raw.get("fold") !== undefined)
    return { resolutions: [resolveParams(steps, raw)], kfold: false };
  const withFold = (fold: number) => resolveParams(steps, new Map(raw).set("fold", String(fold)));
  const first = withFold(1);
  const folds = Number(first.flat.folds);
  const resolutions = [first];
  for (let fold = 2; fold <= folds; fold++) resolutions.push(withFold(fold));
  return { resolutions, kfold: true };
}

/** The parameters the parent of a k-fold run logs: every fold's, without the fold. */
export function parentParams(resolution: Resolution, kfold: boolean): Resolution["flat"] {
  if (!kfold) return resolution.flat;
  const { fold: _fold, ...rest } = resolution.flat;
  return rest;
}

/** `<step>_<metric>_mean` and `_std` of every numeric step metric over the folds (std: sample, n - 1). */
export function foldSummary(folds: readonly FoldReport[]): Record<string, number> {
  const values = new Map<string, number[]>();
  for (const f of folds) {
    for (const s of f.steps) {
      for (const [k, value] of Object.entries(s.metrics)) {
        if (typeof value !== "number" || !Number.isFinite(value)) continue;
        const name = `${s.step}_${k}`;
        values.set(name, [...(values.get(name) ?? []), value]);
      }
    }
  }
  const out: Record<string, number> = {};
  for (const [name, xs] of values) {
    // A metric some fold lacks (a cached step from an older version) is left out rather than averaged over fewer folds.
    if (xs.length !== folds.length) continue;
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
    out[`${name}_mean`] = mean;
    out[`${name}_std`] = xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : 0;
  }
  return out;
}

/** The small table of a k-fold run's text summary: each fold's test RMSE per step, then their mean and std. */
export function formatFolds(folds: readonly FoldReport[], summary: Readonly<Record<string, number>>): string {
  const metrics = [...new Set(folds.flatMap((f) => f.steps.filter((s) => typeof s.metrics.test_rmse === "number").map((s) => s.step)))];
  const names = metrics.map((step) => `${step}_test_rmse`);
  const cell = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(4));
  const rows = folds.map((f) => [
    String(f.fold),
    f.runId.slice(0, 12),
    ...metrics.map((step) => {
      const m = f.steps.find((s) => s.step === step)?.metrics.test_rmse;
      return cell(typeof m === "number" ? m : undefined);
    }),
  ]);
  rows.push(["mean", "", ...names.map((n) => cell(summary[`${n}_mean`]))]);
  rows.push(["std", "", ...names.map((n) => cell(summary[`${n}_std`]))]);
  return formatTable(rows, ["fold", "run", ...names]);
}
