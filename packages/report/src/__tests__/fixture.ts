/**
 * Test support: the inputs of a small run's report, made up but shaped as a real run's are (keras
 * and ALS loss curves, test RMSE of two models and two baselines, an error histogram per model).
 */
import type { StepHistory, TestFigures } from "../charts.js";
import type { RunSummary } from "../html.js";
import type { RankingSummary } from "../ranking.js";

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

const movie = (movieId: number, title: string | null) => ({ movieId, title });

/** The ranking step's summary of a small run: four models, one sample user with a title that needs escaping. */
export const RANKING: RankingSummary = {
  k: 10,
  minRating: 0,
  users: 120,
  catalog: 900,
  models: [
    { model: "als", ndcg: 0.021, precision: 0.018, recall: 0.01, map: 0.007, hitRate: 0.15, coverage: 0.31, popularityBias: 3.2 },
    { model: "keras", ndcg: 0.034, precision: 0.025, recall: 0.012, map: 0.011, hitRate: 0.2, coverage: 0.04, popularityBias: 12.5 },
    { model: "ranker", ndcg: 0.312, precision: 0.21, recall: 0.18, map: 0.15, hitRate: 0.81, coverage: 0.22, popularityBias: 60.1 },
    { model: "popularity", ndcg: 0.2, precision: 0.15, recall: 0.1, map: 0.09, hitRate: 0.7, coverage: 0.012, popularityBias: 150.4 },
  ],
  sampleModel: "ranker",
  samples: [
    {
      userId: 7,
      rated: 23,
      recommendations: [
        { ...movie(50, "Usual Suspects, The (1995)"), score: 0.91, relevant: true },
        { ...movie(51, "Tom & Jerry <Movie>"), score: 0.8, relevant: false },
        { ...movie(52, null), score: 0.7, relevant: false },
      ],
      favourites: [
        { ...movie(1, "Toy Story (1995)"), rating: 5 },
        { ...movie(2, "Jumanji (1995)"), rating: 4.5 },
      ],
    },
  ],
  notes: ["fm: the fm step ran with fm_model=none, so it has no full fit to rank with"],
};
