/**
 * Vega-Lite specifications drawn to SVG strings in Node by Vega's headless renderer (no canvas,
 * no DOM), and the tiny warm-up charts that compile Vega's code paths before the real ones.
 */
import type { TopLevelSpec } from "vega-lite";

/** A chart's Vega-Lite specification (its size is set when drawn). */
export type Spec = TopLevelSpec;

const WIDTH = 520;
const HEIGHT = 220;

/** Renders a Vega-Lite specification to an SVG string (Vega's headless renderer, no canvas or DOM). */
export async function renderSvg(spec: Spec): Promise<string> {
  const [vega, vl] = await Promise.all([import("vega"), import("vega-lite")]);
  const compiled = vl.compile({ $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: WIDTH, height: HEIGHT, ...spec }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Charts of the kinds a report draws (lines with points, bars with labels, binned bars), tiny:
 * drawing them once compiles Vega's code paths, so the real charts draw in a fraction of the time.
 */
export const WARMUP_SPECS: readonly Spec[] = [
  {
    data: {
      values: [
        { x: 1, y: 1, s: "a" },
        { x: 2, y: 2, s: "b" },
      ],
    },
    mark: { type: "line", point: true },
    encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" }, color: { field: "s", type: "nominal" } },
  },
  {
    data: { values: [{ m: "a", v: 1 }] },
    encoding: { y: { field: "m", type: "nominal" }, x: { field: "v", type: "quantitative" } },
    layer: [{ mark: "bar" }, { mark: "text", encoding: { text: { field: "v", type: "quantitative" } } }],
  },
  {
    data: { values: [{ from: 0, to: 1, count: 1 }] },
    mark: "bar",
    encoding: {
      x: { field: "from", type: "quantitative", bin: { binned: true, step: 1 } },
      x2: { field: "to" },
      y: { field: "count", type: "quantitative" },
    },
  },
];
