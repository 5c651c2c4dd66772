/**
 * The fm step as a declared definition for the driver: its parameter schema (params.ts), the etl
 * step's "ratings" and the als step's "factors" as inputs, one "fm" output (the out-of-fold
 * features, the train mask, the full fit's tables and test predictions; adapter.ts), which the
 * keras step reads as its "features" input. Between als and keras, so a change of the network
 * never refits the sampler.
 */
import { defineStep, metricsText, type Manifest } from "@ms/contracts";
import { fm } from "./fm.js";
import { completeFmParams, fmParams } from "./params.js";
import { FM_VERSION } from "./version.js";

export const fmStep = defineStep({
  name: "fm",
  code: { package: "@ms/fm", version: FM_VERSION },
  params: fmParams,
  resolve: completeFmParams,
  inputs: { ratings: "ratings", factors: "factors" },
  outputs: { features: "fm" },
  headline: (metrics) => metricsText(metrics, ["test_rmse", "oof_rmse", "samples_full", "fits"]),
  describe: (manifest: Manifest) => {
    const details = manifest.details as { model?: unknown; width?: unknown };
    return { model: details.model, width: details.width };
  },
  async run(ctx, inputs, params, outDir) {
    await fm({ ratings: inputs.ratings.dir, factors: inputs.factors.dir }, params, outDir, ctx);
  },
});
