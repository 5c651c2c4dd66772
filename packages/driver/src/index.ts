/**
 * @ms/driver: the `ms` command and its library. `runPipeline` runs download -> etl -> als -> keras
 * with a content-addressed step cache and MLflow tracking (a parent run, one child run per step);
 * `openSession` gives a run its get-or-compute on the step cache; `listCache`, `verifyCache` and
 * `gcCache` inspect and prune it; `RemoteCache` shares it through S3-compatible object storage.
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
  type CacheSource,
} from "./cache.js";
export { RemoteCache, parseRemoteUrl, parseRemoteMode, REMOTE_MODES, type RemoteMode, type RemoteCacheOptions, type RemoteRecord, type RemoteTransfer, type RemoteEntrySummary } from "./remote-cache.js";
export { CacheStore, type EntryInfo, type LockInfo, type Owner } from "./storage.js";
export { buildCatalog, parseAssignments, resolveParams, type Resolution } from "./params.js";
export { PIPELINE, STEPS } from "./steps.js";
export { ENTRY_POINTS, TAGS } from "./runlog.js";
export { cacheKey, codeIdentity, type CodeIdentity, type KeyInput } from "./key.js";
export { main, formatReport } from "./cli.js";
export { recommend, predictRatings, readPairs, locateRun, modelDirs, type RecommendOptions, type RecommendResult, type Recommendation, type PredictOptions, type PredictResult, type LocatedRun, type RunEntry } from "./recommend.js";
export { openModel, kerasPredictPairs, MODEL_KINDS, type ModelKind, type ServedModel } from "./serve.js";
