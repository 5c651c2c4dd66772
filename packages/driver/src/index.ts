/**
 * @ms/driver: the `ms` command and its library. `runPipeline` runs download -> etl -> als -> keras
 * with a content-addressed step cache and MLflow tracking (a parent run, one child run per step);
 * `listCache`, `verifyCache` and `gcCache` inspect and prune the cache.
 */
export { runPipeline, defaultCacheDir, DEFAULT_DATASET, DEFAULT_EXPERIMENT, type RunPipelineOptions, type PipelineReport, type StepReport } from "./pipeline.js";
export { listCache, verifyCache, gcCache, parseAge, type CacheEntrySummary, type VerifyReport, type GcOptions, type GcReport } from "./cache.js";
export { STEPS, NOT_IN_KEY, buildCatalog, parseAssignments, resolveParams, stepModules, type ParamSpec, type ParamResolution, type StepName } from "./params.js";
export { ENTRY_POINTS, TAGS } from "./runlog.js";
export { codeIdentity, type CodeIdentity } from "./code.js";
export { main, formatReport } from "./cli.js";
