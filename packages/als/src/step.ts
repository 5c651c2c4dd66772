/**
 * The als step as a declared definition for the driver: its parameters with the seed's names and
 * defaults, one "ratings" input (the etl step's artifact) and one "factors" output. The engine is
 * a choice inside the step: the local multi-threaded fit, or the same fit on a Spark cluster
 * (src/spark/spark.ts); both publish the same factors contract.
 */
import { availableParallelism } from "node:os";
import { defineStep, param, type Manifest, type ParamDefs } from "@ms/contracts";
import { als, ALS_DEFAULTS, resolveAlsParams, type AlsParams } from "./als.js";
import { alsSpark, resolveSparkParams, SPARK_DEFAULTS, type SparkDetails, type SparkParams } from "./spark/spark.js";
import { ALS_VERSION } from "./version.js";

/** The step's parameters: the fit's own, plus the engine and where Spark runs. */
export type AlsStepParams = AlsParams & SparkParams;

const NOT_RESULT = "where and how Spark runs the job, not what it computes";

const alsParams: ParamDefs<AlsStepParams> = {
  rank: param.integer({ default: ALS_DEFAULTS.rank, doc: "number of latent factors" }),
  maxIter: param.integer({ default: ALS_DEFAULTS.maxIter, doc: "ALS iterations (each solves users, then movies)" }),
  regParam: param.number({ default: ALS_DEFAULTS.regParam, doc: "regularisation (Spark's ALS-WR: scaled by each row's rating count)" }),
  splitProp: param.number({ default: ALS_DEFAULTS.splitProp, name: "split_prop", doc: "share of ratings in the training part (keras reuses the split als made)" }),
  seed: param.integer({ default: ALS_DEFAULTS.seed, name: "seed", doc: "the train/test split and ALS initialisation; keras_seed defaults to it" }),
  coldStartStrategy: param.choice(["drop", "nan"] as const, { default: ALS_DEFAULTS.coldStartStrategy, doc: "test rows whose user or movie has no factors: drop them, or score NaN" }),
  nonnegative: param.boolean({ default: ALS_DEFAULTS.nonnegative, doc: "non-negative factors (Spark's nonnegative)" }),
  numThreads: param.integer({
    default: availableParallelism(),
    doc: "threads for the sweeps of the local engine (default: the core count)",
    notInKey: "@ms/als gives bit-identical factors for any thread count (its threads test checks it)",
  }),
  engine: param.choice(["local", "spark"] as const, {
    default: SPARK_DEFAULTS.engine,
    name: "als_engine",
    doc: "local: fit on this machine; spark: run pyspark.ml's ALS through spark-submit (SPARK_HOME or PATH) on spark_master",
  }),
  sparkMaster: param.string({
    name: "spark_master",
    doc: "with als_engine=spark: any master spark-submit accepts (spark://host:7077, yarn, k8s://..., local[N]); default spark-submit's own",
    notInKey: "the same job gives the same factors on any cluster",
  }),
  sparkConf: param.string({ name: "spark_conf", doc: "with als_engine=spark: key=value,... passed as spark-submit --conf (no secrets: parameters are recorded)", notInKey: NOT_RESULT }),
  sparkDeployMode: param.choice(["client", "cluster"] as const, {
    default: SPARK_DEFAULTS.sparkDeployMode,
    name: "spark_deploy_mode",
    doc: "with als_engine=spark: spark-submit --deploy-mode (cluster: YARN or Kubernetes; standalone masters run Python jobs in client mode only)",
    notInKey: NOT_RESULT,
  }),
  sparkStaging: param.string({
    name: "spark_staging",
    doc: "with als_engine=spark: a directory every node can reach (path, file://, hdfs://, s3a://, dbfs:/); default under the cache dir, for masters on this machine",
    notInKey: "where the data is staged, not what is computed",
  }),
  sparkNumBlocks: param.integer({ default: SPARK_DEFAULTS.sparkNumBlocks, name: "spark_num_blocks", doc: "with als_engine=spark: ALS numUserBlocks/numItemBlocks (Spark's default 10; its initialisation depends on it)" }),
};

function resolveStepParams(partial: Partial<AlsStepParams>): AlsStepParams {
  const { engine, sparkMaster, sparkConf, sparkDeployMode, sparkStaging, sparkNumBlocks, ...fit } = partial;
  return { ...resolveAlsParams(fit), ...resolveSparkParams({ engine, sparkMaster, sparkConf, sparkDeployMode, sparkStaging, sparkNumBlocks }) };
}

/** The seed's `train_als`. */
export const alsStep = defineStep({
  name: "als",
  code: { package: "@ms/als", version: ALS_VERSION },
  params: alsParams,
  resolve: resolveStepParams,
  inputs: { ratings: "ratings" },
  outputs: { factors: "factors" },
  async run(ctx, inputs, params, outDir) {
    const { engine, sparkMaster, sparkConf, sparkDeployMode, sparkStaging, sparkNumBlocks, ...fit } = params;
    if (engine === "spark") await alsSpark(inputs.ratings.dir, fit, { engine, sparkMaster, sparkConf, sparkDeployMode, sparkStaging, sparkNumBlocks }, outDir, ctx);
    else await als({ ratings: inputs.ratings.dir }, fit, outDir, ctx);
  },
  tags(manifest: Manifest): Record<string, string> {
    const spark = (manifest.details as Partial<SparkDetails> | undefined)?.spark;
    if (!spark) return {};
    return { "ms.spark.applicationId": spark.applicationId, "ms.spark.master": spark.master, "ms.als.engine": "spark" };
  },
});
