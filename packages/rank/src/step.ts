/**
 * The rank step as a declared definition for the driver: its parameter schema (params.ts), the
 * etl step's "ratings" as input, one "ranker" output (adapter.ts). Its metrics are the ranking
 * metrics of its model and of the popularity baseline on the test part, k in their names.
 */
import { defineStep, metricsText, type Manifest } from "@ms/contracts";
import { completeRankParams, rankParams } from "./params.js";
import { rank } from "./rank.js";
import { RANK_VERSION } from "./version.js";

export const rankStep = defineStep({
  name: "rank",
  code: { package: "@ms/rank", version: RANK_VERSION },
  params: rankParams,
  resolve: completeRankParams,
  inputs: { ratings: "ratings" },
  outputs: { ranker: "ranker" },
  headline: (metrics) =>
    metricsText(
      metrics,
      Object.keys(metrics).filter((k) => /^(popularity_)?ndcg_at_\d+$|^precision_at_\d+$|^coverage_at_\d+$|^fit_seconds$/.test(k)),
    ),
  describe: (manifest: Manifest) => {
    const details = manifest.details as { model?: unknown; modelItems?: unknown; lambda?: unknown };
    return { model: details.model, modelItems: details.modelItems, lambda: details.lambda };
  },
  async run(ctx, inputs, params, outDir) {
    await rank({ ratings: inputs.ratings.dir }, params, outDir, ctx);
  },
});
