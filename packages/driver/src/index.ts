/**
 * @ms/driver: the `ms` command and its library. `runPipeline` runs download -> etl -> als -> fm -> keras
 * with a content-addressed step cache (@ms/cache, with @ms/cache-s3 as its remote) and MLflow
 * tracking (a parent run, one child run per step). The cache has its own API in those packages.
 */
export {
  runPipeline,
  defaultCacheDir,
  DEFAULT_DATASET,
  DEFAULT_EXPERIMENT,
  type RunPipelineOptions,
  type PipelineReport,
  type StepReport,
  type PipelineEvents,
} from "./pipeline.js";
export { buildCatalog, parseAssignments, resolveParams, type Resolution } from "@ms/contracts";
export { PIPELINE, STEPS } from "./steps.js";
export { TAGS } from "@ms/tracking";
export { main } from "./cli.js";
export { formatReport, headlineOf, type ReportContext } from "./summary.js";
