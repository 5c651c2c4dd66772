/**
 * The charts of a run report as Vega-Lite specifications: keras training and validation loss per
 * epoch, ALS training loss per iteration, test RMSE of every model beside the baselines, and each
 * model's error histogram on the test rows. A chart whose data is absent is left out.
 */
import type { Spec } from "./svg.js";

/** A step's metric history (what it logged while computing, or replayed on a hit). */
export interface StepHistory {
  step: string;
  points: { key: string; value: number; step: number }[];
}

/** The test-set figures a report draws (what @ms/serve's `evaluate` computes). */
export interface TestFigures {
  testRows: number;
  scores: { model: string; rmse: number; rows: number }[];
  histograms: { model: string; bins: { from: number; to: number; count: number }[] }[];
}

/** The series of one metric (step, value), in step order. */
export function series(points: readonly { key: string; value: number; step?: number }[], key: string): { step: number; value: number }[] {
  return points
    .filter((p) => p.key === key)
    .map((p) => ({ step: p.step ?? 0, value: p.value }))
    .sort((a, b) => a.step - b.step);
}

export interface Chart {
  id: string;
  title: string;
  spec: Spec;
}

/** The charts of a run, from its step histories and the test-set evaluation (absent ones are skipped). */
export function charts(histories: readonly StepHistory[], evaluation: TestFigures | undefined): Chart[] {
  return [...curveCharts(histories), ...(evaluation ? testCharts(evaluation) : [])];
}

/** The training curves: keras loss per epoch, ALS loss per iteration. */
function curveCharts(histories: readonly StepHistory[]): Chart[] {
  const out: Chart[] = [];
  const of = (step: string) => histories.find((h) => h.step === step)?.points ?? [];
  const keras = of("keras");
  const losses = [
    ...series(keras, "loss").map((p) => ({ epoch: p.step, value: p.value, series: "training loss" })),
    ...series(keras, "val_loss").map((p) => ({ epoch: p.step, value: p.value, series: "validation loss" })),
  ];
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
  return out;
}

/** Test RMSE of every model and the baselines, and each model's error histogram. */
function testCharts(evaluation: TestFigures): Chart[] {
  const out: Chart[] = [];
  const scores = evaluation.scores.filter((s) => Number.isFinite(s.rmse)).map((s) => ({ model: s.model, rmse: Number(s.rmse.toFixed(4)) }));
  if (scores.length) {
    out.push({
      id: "test-rmse",
      title: `Test RMSE of every model and two baselines (${evaluation.testRows} test ratings)`,
      spec: {
        data: { values: scores },
        // Narrower than the other charts: the ranking table stands beside it (a model can predict ratings well and rank badly).
        width: 300,
        height: 30 * scores.length,
        encoding: {
          y: { field: "model", type: "nominal", title: null, sort: null },
          x: { field: "rmse", type: "quantitative", title: "test RMSE (lower is better)" },
        },
        layer: [
          { mark: { type: "bar", color: "#4c78a8" } },
          { mark: { type: "text", align: "left", dx: 4 }, encoding: { text: { field: "rmse", type: "quantitative" } } },
        ],
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
          x: {
            field: "from",
            type: "quantitative",
            bin: { binned: true, step: h.bins.length ? h.bins[0].to - h.bins[0].from : 1 },
            title: "predicted - actual rating",
          },
          x2: { field: "to" },
          y: { field: "count", type: "quantitative", title: "test ratings" },
        },
      },
    });
  }
  return out;
}
