/**
 * The run report: one self-contained `report.html` per `ms run` (inline CSS and SVG, no script,
 * no network access to open it). Charts are Vega-Lite specifications rendered to SVG in Node by
 * Vega itself: keras training and validation loss per epoch, ALS training loss per iteration,
 * test RMSE of every model beside the baselines, and each model's error histogram on the test
 * rows. The pipeline logs it as an artifact of the parent run.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Evaluation } from "./evaluate.js";
import { series, type StepHistory } from "./history.js";

/** The parts of a pipeline report (`ms run --json`) the report shows. */
export interface RunSummary {
  runId: string;
  steps: { step: string; cached: boolean; seconds: number; runId: string; metrics: Record<string, unknown> }[];
}

export type Spec = Record<string, unknown>;

const WIDTH = 520;
const HEIGHT = 220;

/** Renders a Vega-Lite specification to an SVG string (Vega's headless renderer, no canvas or DOM). */
export async function renderSvg(spec: Spec): Promise<string> {
  const [vega, vl] = await Promise.all([import("vega"), import("vega-lite")]);
  const compiled = vl.compile({ $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: WIDTH, height: HEIGHT, ...spec } as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function fmt(v: unknown): string {
  if (typeof v !== "number") return escape(String(v));
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

export interface Chart {
  id: string;
  title: string;
  spec: Spec;
}

/** The charts of a run, from its step histories and the test-set evaluation (absent ones are skipped). */
export function charts(histories: readonly StepHistory[], evaluation: Evaluation | undefined): Chart[] {
  const out: Chart[] = [];
  const of = (step: string) => histories.find((h) => h.step === step)?.points ?? [];
  const keras = of("keras");
  const losses = [...series(keras, "loss").map((p) => ({ epoch: p.step, value: p.value, series: "training loss" })), ...series(keras, "val_loss").map((p) => ({ epoch: p.step, value: p.value, series: "validation loss" }))];
  if (losses.length) {
    out.push({
      id: "keras-loss",
      title: "Keras: training and validation loss (MSE) per epoch",
      spec: {
        data: { values: losses },
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1, format: "d" } },
          y: { field: "value", type: "quantitative", title: "loss (MSE)", scale: { zero: false } },
          color: { field: "series", type: "nominal", title: null },
        },
      },
    });
  }
  const als = series(of("als"), "train_loss").map((p) => ({ iteration: p.step, value: p.value }));
  if (als.length) {
    out.push({
      id: "als-loss",
      title: "ALS: training loss per iteration",
      spec: {
        data: { values: als },
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "iteration", type: "quantitative", title: "iteration", axis: { tickMinStep: 1, format: "d" } },
          y: { field: "value", type: "quantitative", title: "training loss", scale: { zero: false } },
        },
      },
    });
  }
  if (evaluation) {
    const scores = evaluation.scores.filter((s) => Number.isFinite(s.rmse)).map((s) => ({ model: s.model, rmse: Number(s.rmse.toFixed(4)) }));
    if (scores.length) {
      out.push({
        id: "test-rmse",
        title: `Test RMSE of every model and two baselines (${evaluation.testRows} test ratings)`,
        spec: {
          data: { values: scores },
          height: 30 * scores.length,
          encoding: {
            y: { field: "model", type: "nominal", title: null, sort: null },
            x: { field: "rmse", type: "quantitative", title: "test RMSE (lower is better)" },
          },
          layer: [{ mark: { type: "bar", color: "#4c78a8" } }, { mark: { type: "text", align: "left", dx: 4 }, encoding: { text: { field: "rmse", type: "quantitative" } } }],
        },
      });
    }
    for (const h of evaluation.histograms) {
      out.push({
        id: `errors-${h.model}`,
        title: `${h.model}: prediction error on the test ratings (predicted - actual)`,
        spec: {
          data: { values: h.bins },
          mark: { type: "bar", color: "#f58518" },
          encoding: {
            x: { field: "from", type: "quantitative", bin: { binned: true, step: h.bins.length ? h.bins[0].to - h.bins[0].from : 1 }, title: "predicted - actual rating" },
            x2: { field: "to" },
            y: { field: "count", type: "quantitative", title: "test ratings" },
          },
        },
      });
    }
  }
  return out;
}

/** A chart drawn: what the report embeds (kept as a memo, so a cached run need not load Vega). */
export interface Figure {
  id: string;
  title: string;
  svg: string;
}

/**
 * Charts of the kinds a report draws (lines with points, bars with labels, binned bars), tiny:
 * drawing them once compiles Vega's code paths, so the real charts draw in a fraction of the time.
 */
export const WARMUP_SPECS: readonly Spec[] = [
  { data: { values: [{ x: 1, y: 1, s: "a" }, { x: 2, y: 2, s: "b" }] }, mark: { type: "line", point: true }, encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" }, color: { field: "s", type: "nominal" } } },
  { data: { values: [{ m: "a", v: 1 }] }, encoding: { y: { field: "m", type: "nominal" }, x: { field: "v", type: "quantitative" } }, layer: [{ mark: "bar" }, { mark: "text", encoding: { text: { field: "v", type: "quantitative" } } }] },
  { data: { values: [{ from: 0, to: 1, count: 1 }] }, mark: "bar", encoding: { x: { field: "from", type: "quantitative", bin: { binned: true, step: 1 } }, x2: { field: "to" }, y: { field: "count", type: "quantitative" } } },
];

/** The built worker script (dist/chart-worker.js), beside this module or, from the sources, in dist/. */
function chartWorkerScript(): URL | undefined {
  for (const rel of ["./chart-worker.js", "../dist/chart-worker.js"]) {
    const url = new URL(rel, import.meta.url);
    if (url.protocol === "file:" && existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/**
 * Vega in a worker thread, started when a run first computes a step: loading Vega and Vega-Lite
 * and warming them up takes about half a second of one core, which a cold run then spends beside
 * its steps (keras trains on one thread) instead of after them. It never keeps the process alive.
 */
export class ChartWorker {
  private readonly pending = new Map<number, { resolve(svgs: string[]): void; reject(error: Error): void }>();
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on("message", (msg: { id: number; svgs?: string[]; error?: string }) => {
      const call = this.pending.get(msg.id);
      if (!call) return;
      this.pending.delete(msg.id);
      if (!this.pending.size) worker.unref();
      if (msg.svgs) call.resolve(msg.svgs);
      else call.reject(new Error(msg.error ?? "chart worker: no answer"));
    });
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => this.fail(new Error(`chart worker exited with code ${code}`)));
  }

  /** A started worker, or undefined where the built script is absent (charts are then drawn on this thread). */
  static start(): ChartWorker | undefined {
    const script = chartWorkerScript();
    return script ? new ChartWorker(new Worker(script)) : undefined;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const call of this.pending.values()) call.reject(this.failure);
    this.pending.clear();
  }

  /** SVGs of the specifications, in order. */
  render(specs: readonly Spec[]): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // Referenced while an answer is awaited: nothing else may be keeping the event loop alive.
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, specs });
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error("chart worker closed");
    await this.worker.terminate();
  }
}

/** Draws the charts: in the chart worker when one is given and works, else on this thread. */
export async function renderFigures(list: readonly Chart[], worker?: ChartWorker): Promise<Figure[]> {
  if (worker && list.length) {
    const svgs = await worker.render(list.map((c) => c.spec)).catch(() => undefined);
    if (svgs?.length === list.length) return list.map((c, i) => ({ id: c.id, title: c.title, svg: svgs[i] }));
  }
  const out: Figure[] = [];
  for (const c of list) out.push({ id: c.id, title: c.title, svg: await renderSvg(c.spec) });
  return out;
}

export interface ReportInput {
  report: RunSummary;
  figures: readonly Figure[];
  params: Record<string, unknown>;
  trackingUri: string;
  createdAt?: Date;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}.muted{color:#666}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .7rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-size:.9em}.grid{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}figcaption{font-weight:600;margin-bottom:.3rem}
.params{columns:3;font-size:.85em}`;

/** The report's HTML: a summary of the steps, the charts, and the parameters. */
export function renderReport(input: ReportInput): string {
  const { report } = input;
  const rows = report.steps
    .map((s) => {
      const metrics = Object.entries(s.metrics)
        .filter(([, v]) => typeof v === "number" && Number.isFinite(v))
        .map(([k, v]) => `${escape(k)}=${fmt(v)}`)
        .join(" ");
      return `<tr><td>${escape(s.step)}</td><td>${s.cached ? "cached" : "computed"}</td><td>${s.seconds.toFixed(2)}</td><td><code>${escape(s.runId)}</code></td><td>${metrics}</td></tr>`;
    })
    .join("\n");
  const figures = input.figures.map((f) => `<figure id="${escape(f.id)}" class="chart"><figcaption>${escape(f.title)}</figcaption>\n${f.svg}\n</figure>`);
  const params = Object.entries(input.params)
    .map(([k, v]) => `<div><code>${escape(k)}</code> = ${fmt(v)}</div>`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ms run ${escape(report.runId)}</title><style>${CSS}</style></head>
<body>
<h1>ms run report</h1>
<p class="muted">run <code>${escape(report.runId)}</code> · tracking ${escape(input.trackingUri)} · ${escape((input.createdAt ?? new Date()).toISOString())}</p>
<h2>Steps</h2>
<table><thead><tr><th>step</th><th>result</th><th>seconds</th><th>MLflow run</th><th>final metrics</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Charts</h2>
<div class="grid">
${figures.join("\n")}
</div>
<h2>Parameters</h2>
<div class="params">${params}</div>
</body></html>
`;
}
