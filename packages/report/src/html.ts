/**
 * The run report's HTML: one self-contained page (inline CSS and SVG, no script, nothing fetched
 * to open it) with a summary of the steps, the drawn charts and the parameters.
 */
import { escapeHtml, rankingFigure, samplesSection, type RankingSummary } from "./ranking.js";
import type { Figure } from "./worker.js";

/** The parts of a pipeline report (`ms run --json`) the report shows. */
export interface RunSummary {
  runId: string;
  steps: { step: string; cached: boolean; seconds: number; runId: string; metrics: Record<string, unknown> }[];
}

function fmt(v: unknown): string {
  if (typeof v !== "number") return escapeHtml(String(v));
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

export interface ReportInput {
  report: RunSummary;
  figures: readonly Figure[];
  params: Record<string, unknown>;
  trackingUri: string;
  /** The ranking step's metrics and sample users (absent: a run without it). */
  ranking?: RankingSummary;
  createdAt?: Date;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}.muted{color:#666}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .7rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-size:.9em}.grid{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}figcaption{font-weight:600;margin-bottom:.3rem}
.params{columns:3;font-size:.85em}td.num{text-align:right;font-variant-numeric:tabular-nums}figure.table table{font-size:.85em}figure.table td,figure.table th{padding:.2rem .45rem}figure.table{max-width:40rem}figure.table .muted{font-size:.85em}.sample .grid{align-items:flex-start}.beside{display:flex;flex-wrap:wrap;gap:1.5rem;flex-basis:100%;align-items:flex-start}h3{font-size:1rem;margin:1.2rem 0 .3rem}`;

/** The report's HTML: a summary of the steps, the charts, and the parameters. */
export function renderReport(input: ReportInput): string {
  const { report } = input;
  const rows = report.steps
    .map((s) => {
      const metrics = Object.entries(s.metrics)
        .filter(([, v]) => typeof v === "number" && Number.isFinite(v))
        .map(([k, v]) => `${escapeHtml(k)}=${fmt(v)}`)
        .join(" ");
      return `<tr><td>${escapeHtml(s.step)}</td><td>${s.cached ? "cached" : "computed"}</td><td>${s.seconds.toFixed(2)}</td><td><code>${escapeHtml(s.runId)}</code></td><td>${metrics}</td></tr>`;
    })
    .join("\n");
  const figures = input.figures.map(
    (f) => `<figure id="${escapeHtml(f.id)}" class="chart"><figcaption>${escapeHtml(f.title)}</figcaption>\n${f.svg}\n</figure>`,
  );
  // The ranking table shares a row with the test RMSE chart: rating error and ranking quality side by side.
  if (input.ranking) {
    const at = input.figures.findIndex((f) => f.id === "test-rmse");
    const table = rankingFigure(input.ranking);
    if (at >= 0) figures[at] = `<div class="beside">${figures[at]}\n${table}</div>`;
    else figures.unshift(`<div class="beside">${table}</div>`);
  }
  const params = Object.entries(input.params)
    .map(([k, v]) => `<div><code>${escapeHtml(k)}</code> = ${fmt(v)}</div>`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ms run ${escapeHtml(report.runId)}</title><style>${CSS}</style></head>
<body>
<h1>ms run report</h1>
<p class="muted">run <code>${escapeHtml(report.runId)}</code> · tracking ${escapeHtml(input.trackingUri)} · ${escapeHtml((input.createdAt ?? new Date()).toISOString())}</p>
<h2>Steps</h2>
<table><thead><tr><th>step</th><th>result</th><th>seconds</th><th>MLflow run</th><th>final metrics</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Charts</h2>
<div class="grid">
${figures.join("\n")}
</div>
${input.ranking ? samplesSection(input.ranking) : ""}
<h2>Parameters</h2>
<div class="params">${params}</div>
</body></html>
`;
}
