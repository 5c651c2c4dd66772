/**
 * Drawing a report's charts: in a worker thread (`ChartWorker`, running the built
 * dist/chart-worker.js) when one is given and works, else on this thread. A drawn chart is a
 * `Figure`; `FiguresSchema` validates figures read back from a memo file.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import * as v from "valibot";
import type { Chart } from "./charts.js";
import { renderSvg, type Spec } from "./svg.js";

/** A chart drawn: what the report embeds (kept as a memo, so a cached run need not load Vega). */
export const FiguresSchema = v.array(v.object({ id: v.string(), title: v.string(), svg: v.string() }));
export type Figure = v.InferOutput<typeof FiguresSchema>[number];

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
