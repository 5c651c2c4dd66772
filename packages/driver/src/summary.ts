/**
 * What `ms run` prints without `--json`: one line per step (cached or not, seconds, key, and the
 * step's own headline from its definition), then where the run's results are and what to run next.
 */
import { formatTable, metricsText, type Step } from "@ms/contracts";
import { resolveTrackingUri } from "@ms/tracking";
import { formatFolds } from "./folds.js";
import { defaultCacheDir, type PipelineReport, type StepReport } from "./pipeline.js";
import { PIPELINE } from "./steps.js";

/** Where a run's results are and what to run next, under the summary table. */
export interface ReportContext {
  trackingUri?: string;
  cacheDir?: string;
  /** The steps the run ran (default: the pipeline of steps.ts), whose headlines the lines show. */
  steps?: readonly Step[];
}

/** The artifact kind `ms recommend` serves by default (@ms/serve's keras model): its directory is the run's "model". */
const SERVED_MODEL_KIND = "keras-model";

/** A step's text on its summary line: its definition's headline (its metrics for a step not in `steps`). */
export function headlineOf(report: StepReport, steps: readonly Step[] = PIPELINE): string {
  const step = steps.find((s) => s.name === report.step);
  return step ? step.headline(report.metrics, report.outputs) : metricsText(report.metrics);
}

function quoteArg(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

function trackingTarget(uri: string | undefined): ReturnType<typeof resolveTrackingUri> | undefined {
  try {
    return resolveTrackingUri(uri);
  } catch {
    return undefined;
  }
}

export function formatReport(report: PipelineReport, where: ReportContext = {}): string {
  const rows = report.steps.map((s) => [
    s.step,
    s.source === "remote" ? "remote" : s.cached ? "yes" : "no",
    s.seconds.toFixed(2),
    s.key.slice(0, 12),
    headlineOf(s, where.steps),
  ]);
  const lines = [formatTable(rows, ["step", "cached", "seconds", "key", "metrics"]), ""];
  if (report.folds && report.summary) {
    lines[0] = `${report.folds.length} folds (split=kfold); the last fold's steps:\n${lines[0]}`;
    lines.push(formatFolds(report.folds, report.summary), "(std: sample standard deviation over the folds)", "");
  }
  lines.push(`run     ${report.runId}`);
  const model = report.steps.flatMap((s) => Object.values(s.outputs)).findLast((o) => o.kind === SERVED_MODEL_KIND);
  if (model) lines.push(`model   ${model.dir}${report.folds ? " (the last fold's: what ms recommend and ms predict serve)" : ""}`);
  if (report.report) lines.push(`report  ${report.report}`);
  const target = trackingTarget(where.trackingUri);
  if (target) lines.push(`runs    ${target.kind === "rest" ? target.url : target.root}`);
  const flags = [
    ...(where.trackingUri ? ["--tracking-uri", quoteArg(where.trackingUri)] : []),
    ...(where.cacheDir && where.cacheDir !== defaultCacheDir() ? ["--cache-dir", quoteArg(where.cacheDir)] : []),
  ].join(" ");
  lines.push("", "next:");
  lines.push(`  ms recommend --user 1${flags ? ` ${flags}` : ""}        top 10 movies for user 1 from this run's model`);
  if (target?.kind === "file")
    lines.push(`  MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ${quoteArg(target.root)}   the runs in MLflow's UI`);
  else if (target) lines.push(`  open ${target.url}   the runs in MLflow's UI`);
  return lines.join("\n");
}
