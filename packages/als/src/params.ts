/**
 * The als step's parameter schema: the one place each parameter is declared, under its one name
 * (the seed MLproject's `-P` name), with its default, range, and whether it enters the cache key.
 * The fit's parameters, the engine, and where Spark runs; `resolveAlsParams` is the one resolver.
 */
import { availableParallelism } from "node:os";
import {
  BadParameterError,
  checkSplitParams,
  param,
  paramResolver,
  pickSplitParams,
  type ParamDefs,
  type SplitParams,
} from "@ms/contracts";
import { parseSparkConf, stripCredentials } from "./spark/conf.js";
import type { ColdStartStrategy } from "./types.js";

export type AlsEngine = "local" | "spark";
export type SparkDeployMode = "client" | "cluster";

/** Every parameter of the als step; the split's (`split`, `split_prop`, `folds`, `fold`) are @ms/contracts'. */
export interface AlsStepParams extends Omit<SplitParams, "test_ratings"> {
  als_rank: number;
  als_max_iter: number;
  als_reg_param: number;
  seed: number;
  als_cold_start_strategy: ColdStartStrategy;
  /** Spark's `nonnegative`: each row solved as non-negative least squares. */
  als_nonnegative: boolean;
  /** Threads for the sweeps; the result is bit-identical for any value. */
  als_num_threads: number;
  als_engine: AlsEngine;
  /** Any master spark-submit accepts; absent: spark-submit's own default (spark-defaults.conf, else local[*]). */
  spark_master?: string;
  /** `key=value,key=value` passed as `--conf`; a comma inside a value is kept when the next piece is not `key=`. */
  spark_conf?: string;
  spark_deploy_mode: SparkDeployMode;
  /** A directory every node can reach (a path, file://, hdfs://, s3a://, dbfs:/); default under the step's cache dir. */
  spark_staging?: string;
  /** Spark ALS's numUserBlocks/numItemBlocks (its default 10); the initialisation depends on it. */
  spark_num_blocks: number;
}

/** The fit's own parameters: what the local fit (`als(...)`) reads. */
export type AlsParams = Pick<
  AlsStepParams,
  | "als_rank"
  | "als_max_iter"
  | "als_reg_param"
  | "split"
  | "split_prop"
  | "folds"
  | "fold"
  | "seed"
  | "als_cold_start_strategy"
  | "als_nonnegative"
  | "als_num_threads"
>;
/** Where and how Spark runs the fit. */
export type SparkParams = Pick<
  AlsStepParams,
  "als_engine" | "spark_master" | "spark_conf" | "spark_deploy_mode" | "spark_staging" | "spark_num_blocks"
>;

/** The fit's defaults (the seed's). */
export const ALS_DEFAULTS: Readonly<Omit<AlsParams, "als_num_threads" | "fold">> = {
  als_rank: 12,
  als_max_iter: 10,
  als_reg_param: 0.1,
  split: "hash",
  split_prop: 0.8,
  folds: 5,
  seed: 42,
  als_cold_start_strategy: "drop",
  als_nonnegative: false,
};

const NOT_RESULT = "where and how Spark runs the job, not what it computes";

/**
 * The engine and where Spark runs, declared once here: the als step spreads them into its schema,
 * and so does any step that fits ALS through this package (the fm step's fold fits), so one `-P`
 * reaches both.
 */
export const sparkParams: ParamDefs<SparkParams> = {
  als_engine: param.choice(["local", "spark"] as const, {
    default: "local",
    doc: "local: fit on this machine; spark: run pyspark.ml's ALS through spark-submit (SPARK_HOME or PATH) on spark_master",
  }),
  spark_master: param.string({
    defaultDoc: "spark-submit's own",
    doc: "with als_engine=spark: any master spark-submit accepts (spark://host:7077, yarn, k8s://..., local[N])",
    notInKey: "the same job gives the same factors on any cluster",
  }),
  spark_conf: param.string({
    defaultDoc: "none",
    doc: "with als_engine=spark: key=value,... passed as spark-submit --conf (no secrets: parameters are recorded)",
    notInKey: NOT_RESULT,
  }),
  spark_deploy_mode: param.choice(["client", "cluster"] as const, {
    default: "client",
    doc: "with als_engine=spark: spark-submit --deploy-mode (cluster: YARN or Kubernetes; standalone masters run Python jobs in client mode only)",
    notInKey: NOT_RESULT,
  }),
  spark_staging: param.string({
    defaultDoc: "under the cache dir, for masters on this machine",
    doc: "with als_engine=spark: a directory every node can reach (path, file://, hdfs://, s3a://, dbfs:/)",
    notInKey: "where the data is staged, not what is computed",
  }),
  spark_num_blocks: param.integer({
    default: 10,
    min: 1,
    max: 10_000,
    doc: "with als_engine=spark: ALS numUserBlocks/numItemBlocks (its initialisation depends on it)",
  }),
};

export const alsParams: ParamDefs<AlsStepParams> = {
  als_rank: param.integer({ default: ALS_DEFAULTS.als_rank, min: 1, max: 1024, doc: "number of latent factors" }),
  als_max_iter: param.integer({
    default: ALS_DEFAULTS.als_max_iter,
    min: 1,
    max: 10_000,
    doc: "ALS iterations (each solves users, then movies)",
  }),
  als_reg_param: param.number({
    default: ALS_DEFAULTS.als_reg_param,
    min: 0,
    doc: "regularisation (Spark's ALS-WR: scaled by each row's rating count)",
  }),
  ...pickSplitParams("split", "split_prop", "folds", "fold"),
  seed: param.integer({ default: ALS_DEFAULTS.seed, doc: "the train/test split and ALS initialisation; keras_seed defaults to it" }),
  als_cold_start_strategy: param.choice(["drop", "nan"] as const, {
    default: ALS_DEFAULTS.als_cold_start_strategy,
    doc: "test rows whose user or movie has no factors: drop them, or score NaN",
  }),
  als_nonnegative: param.boolean({ default: ALS_DEFAULTS.als_nonnegative, doc: "non-negative factors (Spark's nonnegative)" }),
  als_num_threads: param.integer({
    default: Math.min(availableParallelism(), 256),
    min: 1,
    max: 256,
    defaultDoc: "the number of cores",
    doc: "threads for the sweeps of the local engine",
    notInKey: "@ms/als gives bit-identical factors for any thread count (its threads test checks it)",
  }),
  ...sparkParams,
};

/** What the schema cannot check alone: the split's cross checks, the Spark master, staging directory and conf. */
export function completeAlsParams(out: AlsStepParams): AlsStepParams {
  checkSplitParams(out);
  return checkSparkParams(out);
}

/** The Spark parameters' checks the schema cannot make: the master URL (no credentials), the staging directory, the conf. */
export function checkSparkParams<P extends SparkParams>(out: P): P {
  if (out.spark_master !== undefined) {
    if (out.spark_master.trim() === "" || /\s/.test(out.spark_master)) {
      throw new BadParameterError(
        "spark_master",
        `${JSON.stringify(out.spark_master)} is not a master URL (spark://host:7077, yarn, k8s://..., local[N])`,
      );
    }
    if (stripCredentials(out.spark_master) !== out.spark_master) {
      throw new BadParameterError(
        "spark_master",
        "holds credentials (user:password@); the master URL is recorded in tracking, so give them through spark-submit's configuration (spark-defaults.conf, environment) instead",
      );
    }
  }
  if (out.spark_staging !== undefined && out.spark_staging.trim() === "") throw new BadParameterError("spark_staging", "is empty");
  parseSparkConf(out.spark_conf);
  return out;
}

/** Checks and completes the als step's parameters: the step, its bin and library callers all resolve through it. */
export const resolveAlsParams = paramResolver(alsParams, completeAlsParams);
