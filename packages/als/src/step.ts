/**
 * The als step as a declared definition for the driver: its parameter schema (params.ts), one
 * "ratings" input (the etl step's artifact) and one "factors" output. The engine is a choice
 * inside the step: the local multi-threaded fit, or the same fit on a Spark cluster
 * (src/spark/spark.ts); both publish the same factors contract.
 */
import { defineStep, metricsText, type Manifest } from "@ms/contracts";
import { als } from "./als.js";
import { alsParams, completeAlsParams } from "./params.js";
import { alsSpark, type SparkDetails } from "./spark/spark.js";
import { ALS_VERSION } from "./version.js";

/** The seed's `train_als`. */
export const alsStep = defineStep({
  name: "als",
  code: { package: "@ms/als", version: ALS_VERSION },
  params: alsParams,
  resolve: completeAlsParams,
  inputs: { ratings: "ratings" },
  outputs: { factors: "factors" },
  headline: (metrics) => metricsText(metrics, ["train_rmse", "test_rmse"]),
  async run(ctx, inputs, params, outDir) {
    if (params.als_engine === "spark") await alsSpark(inputs.ratings.dir, params, outDir, ctx);
    else await als({ ratings: inputs.ratings.dir }, params, outDir, ctx);
  },
  tags(manifest: Manifest): Record<string, string> {
    const spark = (manifest.details as Partial<SparkDetails> | undefined)?.spark;
    if (!spark) return {};
    return { "ms.spark.applicationId": spark.applicationId, "ms.spark.master": spark.master, "ms.als.engine": "spark" };
  },
});
