/**
 * The chart worker thread (see `ChartWorker` in worker.ts; built as its own dist/chart-worker.js): loads Vega and Vega-Lite and draws the
 * warm-up charts at once, while the pipeline's steps compute, then answers each `{ id, specs }`
 * with `{ id, svgs }` (or `{ id, error }`).
 */
import { parentPort } from "node:worker_threads";
import { WARMUP_SPECS, renderSvg, type Spec } from "./svg.js";

const port = parentPort;
if (!port) throw new Error("@ms/report chart-worker.js must run as a worker thread");
const warm = (async () => {
  for (const spec of WARMUP_SPECS) await renderSvg(spec);
})().catch(() => undefined);

port.on("message", (msg: { id: number; specs: Spec[] }) => {
  void (async () => {
    await warm;
    try {
      const svgs: string[] = [];
      for (const spec of msg.specs) svgs.push(await renderSvg(spec));
      port.postMessage({ id: msg.id, svgs });
    } catch (error) {
      port.postMessage({ id: msg.id, error: (error as Error).message });
    }
  })();
});
