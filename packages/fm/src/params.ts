/**
 * The fm step's parameter schema: the one place each parameter is declared, under its one `-P`
 * name, with its default, range, doc and whether it enters the cache key. The out-of-fold model,
 * its folds, the Bayesian model's rank, sample cap and burn-in, and the feature groups the
 * sampler adds (implicit feedback on either side, time: each `auto`, on when it lowers held-out error,
 * `true` or `false`; ordinal output), and the als step's engine
 * parameters (`als_engine`, `spark_*`) for the als model's fold fits. `resolveFmParams` is the
 * one resolver (the burn-in must leave samples to average).
 */
import { availableParallelism } from "node:os";
import { checkSparkParams, sparkParams, type SparkParams } from "@ms/als";
import { param, paramResolver, type ParamDefs } from "@ms/contracts";
import { checkOofOptions, OOF_LIMITS, AUTO_BAYES_MAX_TRAIN } from "./oof.js";

/** The out-of-fold models, plus `none`: no features at all (for `keras_features=seed` users, who need none). */
export const FM_MODELS = ["auto", "bayes", "als", "none"] as const;
export type FmModel = (typeof FM_MODELS)[number];

export const FM_OUTPUTS = ["regression", "ordinal"] as const;

/** A feature group's setting: `auto` lets the held-out error decide (see @ms/fm `outOfFoldFeatures`), `true`/`false` force it. */
export const GROUP_SETTINGS = ["auto", "true", "false"] as const;
export type GroupSetting = (typeof GROUP_SETTINGS)[number];
export type FmOutput = (typeof FM_OUTPUTS)[number];

/** With als_engine=spark (the als step's parameters, spread here so one `-P` reaches both), the als model's fold fits run on Spark. */
export interface FmParams extends SparkParams {
  fm_model: FmModel;
  fm_folds: number;
  fm_rank: number;
  /** The most Gibbs sweeps a fit may take (burn-in included); the sampler may stop sooner on its validation rows. */
  fm_max_samples: number;
  fm_burn_in: number;
  fm_implicit_user: GroupSetting;
  fm_implicit_movie: GroupSetting;
  fm_time: GroupSetting;
  fm_output: FmOutput;
  /** Seeds the fits (each fit i takes fm_seed + i). */
  fm_seed: number;
  /** Threads of the als model's fold fits; the factors are bit-identical for any count. */
  fm_num_threads: number;
}

export const FM_DEFAULTS: Readonly<Omit<FmParams, "fm_num_threads" | keyof SparkParams>> = {
  fm_model: "auto",
  fm_folds: 3,
  fm_rank: 10,
  fm_max_samples: 300,
  fm_burn_in: 20,
  fm_implicit_user: "auto",
  fm_implicit_movie: "auto",
  fm_time: "auto",
  fm_output: "regression",
  fm_seed: 42,
};

const d = FM_DEFAULTS;

export const fmParams: ParamDefs<FmParams> = {
  fm_model: param.choice(FM_MODELS, {
    default: d.fm_model,
    doc: `the out-of-fold model: bayes (Gibbs-sampled factorization machine), als (the als step's ALS-WR per fold), auto (bayes up to ${AUTO_BAYES_MAX_TRAIN.toLocaleString("en-US")} training ratings, als above), none (no features: for keras_features=seed)`,
  }),
  fm_folds: param.integer({
    default: d.fm_folds,
    min: 2,
    max: OOF_LIMITS.folds,
    doc: "folds of the training part for the out-of-fold fits (plus one fit on the whole training part)",
  }),
  fm_rank: param.integer({ default: d.fm_rank, min: 1, max: OOF_LIMITS.rank, doc: "rank of the Bayesian factorization machine" }),
  fm_max_samples: param.integer({
    default: d.fm_max_samples,
    min: 1,
    max: OOF_LIMITS.samples,
    doc: "the most Gibbs sweeps per fit, burn-in included (a cap: the sampler may stop sooner)",
  }),
  fm_burn_in: param.integer({
    default: d.fm_burn_in,
    min: 0,
    doc: "sweeps discarded before predictions are averaged (fewer than fm_max_samples)",
  }),
  fm_implicit_user: param.choice(GROUP_SETTINGS, {
    default: d.fm_implicit_user,
    doc: "bayes: the user's implicit feedback (SVD++: the movies the user rated) in the model; auto: kept when it lowers the held-out error of the first fold's fit",
  }),
  fm_implicit_movie: param.choice(GROUP_SETTINGS, {
    default: d.fm_implicit_movie,
    doc: `bayes: the movie's implicit feedback (the "flipped" side: the users who rated it) in the model; auto: kept when it lowers the held-out error of the first fold's fit`,
  }),
  fm_time: param.choice(GROUP_SETTINGS, {
    default: d.fm_time,
    doc: "bayes: time effects (binned timestamps, per-user day biases as timeSVD++); auto: tried when the ratings hold timestamps, kept when it lowers the held-out error of the first fold's fit",
  }),
  fm_output: param.choice(FM_OUTPUTS, {
    default: d.fm_output,
    doc: "bayes: regression (Gaussian noise) or ordinal (ordered probit over the rating classes)",
  }),
  fm_seed: param.integer({ default: d.fm_seed, defaultFrom: "seed", defaultDoc: "the value of seed", doc: "seeds the fits" }),
  fm_num_threads: param.integer({
    default: Math.min(availableParallelism(), 256),
    min: 1,
    max: 256,
    defaultDoc: "the number of cores",
    doc: "threads of the fold fits: the bayes model's fold fits side by side, the als model's worker threads",
    notInKey:
      "each bayes fit is seeded by its fold whatever runs beside it, and @ms/als gives bit-identical factors for any thread count (its threads test checks it)",
  }),
  ...sparkParams,
};

/** The checks one parameter cannot make alone: the burn-in leaves samples to average; the Spark master, staging and conf. */
export function completeFmParams(p: FmParams): FmParams {
  checkSparkParams(p);
  checkOofOptions(
    { folds: p.fm_folds, rank: p.fm_rank, samples: p.fm_max_samples, burnIn: p.fm_burn_in },
    { folds: "fm_folds", rank: "fm_rank", samples: "fm_max_samples", burnIn: "fm_burn_in" },
  );
  return p;
}

/** Checks and completes the fm step's parameters: the step, its bin and library callers all resolve through it. */
export const resolveFmParams = paramResolver(fmParams, completeFmParams);
