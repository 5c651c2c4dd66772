/**
 * Test support: the inputs of a small run's report, made up but shaped as a real run's are (keras
 * and ALS loss curves, test RMSE of two models and two baselines, an error histogram per model).
 */
import type { StepHistory, TestFigures } from "../charts.js";
import type { RunSummary } from "../html.js";

export const HISTORIES: StepHistory[] = [
  {
    step: "keras",
    points: [1, 2, 3].flatMap((e) => [
      { key: "loss", value: 1 / e, step: e },
      { key: "val_loss", value: 1.1 / e, step: e },
    ]),
  },
  { step: "als", points: [0, 1, 2, 3].map((i) => ({ key: "train_loss", value: 100 / (i + 1), step: i })) },
];

function bins(center: number): TestFigures["histograms"][number]["bins"] {
  return Array.from({ length: 8 }, (_, b) => ({
    from: -1 + b * 0.25,
    to: -0.75 + b * 0.25,
    count: Math.round(50 * Math.exp(-(((b - center) / 2) ** 2))),
  }));
}

export const TEST_FIGURES: TestFigures = {
  testRows: 800,
  scores: [
    { model: "global mean", rmse: 1.04, rows: 800 },
    { model: "mean + biases", rmse: 0.91, rows: 800 },
    { model: "als", rmse: 0.88, rows: 800 },
    { model: "keras", rmse: 0.86, rows: 800 },
  ],
  histograms: [
    { model: "als", bins: bins(4) },
    { model: "keras", bins: bins(3.5) },
  ],
};

export const SUMMARY: RunSummary = {
  runId: "0123456789abcdef",
  steps: [
    { step: "als", cached: false, seconds: 1.25, runId: "als-run", metrics: { test_rmse: 0.88, note: "text is left out" } },
    { step: "keras", cached: true, seconds: 0.01, runId: "keras-run", metrics: { test_rmse: 0.86 } },
  ],
};

export const CHART_IDS = ["keras-loss", "als-loss", "test-rmse", "errors-als", "errors-keras"];
