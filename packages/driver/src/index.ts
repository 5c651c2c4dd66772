/**
 * @ms/driver: the `ms` command and its library. `runPipeline` runs download -> etl -> als -> keras
 * with a content-addressed step cache and MLflow tracking (a parent run, one child run per step);
 * `openSession` gives a run its get-or-compute on the step cache; `listCache`, `verifyCache` and
 * `gcCache` inspect and prune it.
 */
export { runPipeline, defaultCacheDir, DEFAULT_DATASET, DEFAULT_EXPERIMENT, type RunPipelineOptions, type PipelineReport, type StepReport } from "./pipeline.js";
export {
  listCache,
  verifyCache,
  gcCache,
  parseAge,
  openSession,
  CacheSession,
  type CacheEntrySummary,
  type VerifyReport,
  type GcOptions,
  type GcReport,
  type GetOrComputeRequest,
  type CacheOutcome,
  type CacheHit,
  type EntryDescription,
} from "./cache.js";
export { CacheStore, type EntryInfo, type LockInfo, type Owner } from "./storage.js";
export { STEPS, NOT_IN_KEY, buildCatalog, parseAssignments, resolveParams, stepModules, type ParamSpec, type ParamResolution, type StepName } from "./params.js";
export { ENTRY_POINTS, TAGS } from "./runlog.js";
export { codeIdentity, type CodeIdentity } from "./code.js";
export { main, formatReport } from "./cli.js";
