/**
 * @ms/als: the als step of the ms pipeline (explicit ALS-WR with Spark MLlib semantics, multi-
 * threaded over shared memory), the factors artifact contract that @ms/keras reads, and scoring.
 */
export { als, type AlsInputs, type AlsMetrics, type AlsResult, type FactorsManifest } from "./als.js";
export {
  alsParams,
  sparkParams,
  checkSparkParams,
  resolveAlsParams,
  ALS_DEFAULTS,
  type AlsParams,
  type AlsStepParams,
  type SparkParams,
  type AlsEngine,
  type SparkDeployMode,
} from "./params.js";
export { readFactors, readFactorFile, writeFactors, writeFactorsArtifact, type FactorFile, type FactorsArtifactInput } from "./adapter.js";
export { predict, predictWith } from "./predict.js";
export {
  FACTORS_FILES,
  FactorsDetailsSchema,
  splitOfFactors,
  type Factors,
  type FactorsDetails,
  type FactorTables,
  type ColdStartStrategy,
} from "./types.js";
export { ALS_VERSION } from "./version.js";
/** The per-row kernel (accumulation and solvers), exported for benchmarks and independent checks. */
export * as kernels from "./kernel.js";
/** The WASM SIMD accumulation and its shared-memory arena, for benchmarks and checks. */
export * as wasmKernels from "./wasm.js";
export { alsStep } from "./step.js";
/** The Spark engine: the als step's fit on any Spark master, publishing the same factors contract (the fm step's fold fits use it). */
export { alsSpark, type SparkDetails } from "./spark/spark.js";
export { factorTable, factorsToArrow, predictionsTable, type FactorsTable, type FactorsArrow, type PredictionsTable } from "./arrow.js";
export { predictTable } from "./predict.js";
/** The ALS fit over prepared arrays and the thread pool, for the fm step's out-of-fold ALS fits. */
export { fitProblem, indexIds, prepareProblem } from "./model.js";
export { inProcessRunner, threadRunner } from "./pool.js";
