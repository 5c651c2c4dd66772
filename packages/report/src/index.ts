/**
 * @ms/report: the run report of the ms pipeline, one self-contained report.html. `charts` turns
 * step histories and test figures into Vega-Lite specifications, `renderFigures` draws them to
 * SVG (in a `ChartWorker` thread when given one), `renderReport` writes the page (with the
 * ranking step's table and sample users when given them). The only package that loads Vega.
 */
export { charts, series, type Chart, type StepHistory, type TestFigures } from "./charts.js";
export { renderSvg, WARMUP_SPECS, type Spec } from "./svg.js";
export { ChartWorker, renderFigures, FiguresSchema, type Figure } from "./worker.js";
export { renderReport, type ReportInput, type RunSummary } from "./html.js";
export type { RankingSummary, RankingRow, SampleUser } from "./ranking.js";
