/**
 * A run's report.html: its figures (the steps' metric curves, drawn by @ms/report, and the test
 * figures of @ms/serve's `evaluate`), the ranking step's metrics table and sample users (read from
 * its entry by @ms/evaluate), the figures kept as a memo in the cache layout's `meta/` named by the
 * run's entries, so a fully cached run draws nothing; the page written under `reports/<run>/` and
 * logged to the parent run.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic, type Logger } from "@ms/contracts";
import type { CacheStore } from "@ms/cache";
import type { RunLog, Tracker } from "@ms/tracking";
import { readRanking, RANKING_KIND } from "@ms/evaluate";
import { evaluate, readMemo, reportMemoKey, writeMemo, type RunEntry } from "@ms/serve";
import {
  charts,
  FiguresSchema,
  renderFigures,
  renderReport,
  type ChartWorker,
  type Figure,
  type RankingSummary,
  type StepHistory,
} from "@ms/report";
import type { StepReport } from "./step-run.js";

const REPORT_FILE = "report.html";

export interface RunReportInput {
  store: CacheStore;
  tracker: Tracker;
  log: RunLog;
  logger: Logger;
  /** The summary the page opens with. */
  report: { runId: string; steps: StepReport[] };
  /** Every resolved parameter. */
  params: Record<string, unknown>;
  /** The metric histories of the steps. */
  histories: readonly StepHistory[];
  /** The entries of the steps (what the test figures score). */
  entries: readonly RunEntry[];
  /** Draws the charts off the main thread, when a computed step started it. */
  chartWorker: ChartWorker | undefined;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Writes report.html and logs it to the parent run; resolves to its path. A report that cannot be
 * made is a warning (undefined), never a failed run; a tracking store that cannot take it fails
 * like any other tracking call.
 */
export async function writeRunReport(input: RunReportInput): Promise<string | undefined> {
  const { logger, report, store } = input;
  const started = performance.now();
  let html: string;
  try {
    const [figures, ranking] = await Promise.all([figuresOf(input), rankingOf(input)]);
    html = renderReport({ report, figures, params: input.params, trackingUri: input.tracker.uri, ...(ranking ? { ranking } : {}) });
  } catch (error) {
    logger.warn({ err: error }, `report: could not be made (${messageOf(error)})`);
    return undefined;
  }
  const dir = path.join(store.layout.reports, report.runId);
  const file = path.join(dir, REPORT_FILE);
  try {
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(file, html);
  } catch (error) {
    logger.warn({ err: error }, `report: could not be written to ${file} (${messageOf(error)})`);
    return undefined;
  }
  await input.log.artifacts(report.runId, file, "all", []);
  logger.debug({ seconds: Number(((performance.now() - started) / 1000).toFixed(2)) }, "report written");
  // A file store holds its own copy among the run's artifacts: point there and drop ours.
  const artifactUri = (await input.tracker.getRun(report.runId)).info.artifactUri;
  if (artifactUri.startsWith("file:")) {
    const logged = path.join(fileURLToPath(artifactUri), REPORT_FILE);
    const isFile = await fs.stat(logged).then(
      (st) => st.isFile(),
      () => false,
    );
    if (isFile) {
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      return logged;
    }
  }
  return file;
}

/** The figures depend only on the entries (a hit replays the history that computed it): drawn once per set. */
async function figuresOf(input: RunReportInput): Promise<Figure[]> {
  const { logger, chartWorker } = input;
  const memo = `figures-${reportMemoKey(input.entries)}.json`;
  const memoDir = input.store.layout.meta;
  const kept = await readMemo(memoDir, memo, FiguresSchema, logger);
  if (kept) return kept;
  // The training curves need no evaluation: drawn (in the chart worker) while the models are scored.
  const curves = renderFigures(charts(input.histories, undefined), chartWorker);
  curves.catch(() => undefined);
  const evaluation = await evaluate(input.entries, { memoDir, logger }).catch((error: unknown) => {
    logger.warn({ err: error }, `report: no test-set figures (${messageOf(error)})`);
    return undefined;
  });
  const figures = [...(await curves), ...(await renderFigures(charts([], evaluation), chartWorker))];
  if (evaluation) await writeMemo(memoDir, memo, figures);
  return figures;
}

/** The ranking step's table and samples, when the run has its entry; one that cannot be read is a warning, the rest of the report stays. */
async function rankingOf(input: RunReportInput): Promise<RankingSummary | undefined> {
  const entry = input.entries.findLast((e) => e.manifest.kind === RANKING_KIND);
  if (!entry) return undefined;
  try {
    return await readRanking(entry.dir);
  } catch (error) {
    input.logger.warn({ err: error }, `report: no ranking table (${messageOf(error)})`);
    return undefined;
  }
}
