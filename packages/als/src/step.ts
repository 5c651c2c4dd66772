/**
 * The als step as a declared definition for the driver: its parameters with the seed's names and
 * defaults, one "ratings" input (the etl step's artifact) and one "factors" output.
 */
import { availableParallelism } from "node:os";
import { defineStep, param, type ParamDefs } from "@ms/contracts";
import { als, ALS_DEFAULTS, resolveAlsParams, type AlsParams } from "./als.js";
import { ALS_VERSION } from "./version.js";

const alsParams: ParamDefs<AlsParams> = {
  rank: param.integer({ default: ALS_DEFAULTS.rank, doc: "number of latent factors" }),
  maxIter: param.integer({ default: ALS_DEFAULTS.maxIter, doc: "ALS iterations (each solves users, then movies)" }),
  regParam: param.number({ default: ALS_DEFAULTS.regParam, doc: "regularisation (Spark's ALS-WR: scaled by each row's rating count)" }),
  splitProp: param.number({ default: ALS_DEFAULTS.splitProp, name: "split_prop", doc: "share of ratings in the training part (keras reuses the split als made)" }),
  seed: param.integer({ default: ALS_DEFAULTS.seed, name: "seed", doc: "the train/test split and ALS initialisation; keras_seed defaults to it" }),
  coldStartStrategy: param.choice(["drop", "nan"] as const, { default: ALS_DEFAULTS.coldStartStrategy, doc: "test rows whose user or movie has no factors: drop them, or score NaN" }),
  nonnegative: param.boolean({ default: ALS_DEFAULTS.nonnegative, doc: "non-negative factors (Spark's nonnegative)" }),
  numThreads: param.integer({
    default: availableParallelism(),
    doc: "threads for the sweeps (default: the core count)",
    notInKey: "@ms/als gives bit-identical factors for any thread count (its threads test checks it)",
  }),
};

/** The seed's `train_als`. */
export const alsStep = defineStep({
  name: "als",
  code: { package: "@ms/als", version: ALS_VERSION },
  params: alsParams,
  resolve: resolveAlsParams,
  inputs: { ratings: "ratings" },
  outputs: { factors: "factors" },
  async run(ctx, inputs, params, outDir) {
    await als({ ratings: inputs.ratings.dir }, params, outDir, ctx);
  },
});
