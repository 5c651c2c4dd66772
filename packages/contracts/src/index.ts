/**
 * @ms/contracts: the small shared vocabulary of the ms pipeline. Artifact manifests and
 * references, content digests, the error classes and their exit codes, the train/test split,
 * logging, the step contract with its parameter schema, and the CLI plumbing every bin uses
 * (a step's bin is generated from its definition).
 */
export * from "./errors.js";
export * from "./digest.js";
export * from "./manifest.js";
export * from "./artifact.js";
export * from "./split.js";
export * from "./step.js";
export * from "./params.js";
export { runStepCli, flagOf, type StepCliOptions } from "./step-cli.js";
export { createLogger, silentLogger, isLogLevel, LOG_LEVELS, type Logger, type LogLevel, type LoggerOptions } from "./logger.js";
export {
  runCli,
  abortOnSignals,
  normalizeArgv,
  formatHelp,
  formatTable,
  parseIntegerFlag,
  parseNumberFlag,
  type CliSpec,
  type CliOptions,
  type CliOption,
  type CliContext,
  type CliResult,
} from "./cli.js";
export {
  defaultCacheDir,
  digestFileRemembered,
  fileIdentity,
  identityTrustworthy,
  RACY_IDENTITY_MS,
  type FileIdentity,
} from "./file-digests.js";
export {
  parseJsonFile,
  parseJsonFileSync,
  parseJsonText,
  recordOf,
  checkJson,
  describeSchemaError,
  formatIssuePath,
  type ParseJsonOptions,
  type JsonErrorFactory,
} from "./json-file.js";
export { mulberry32, mixSeed } from "./random.js";
export { writeFileAtomic, walkFiles } from "./files.js";
export { pidAlive } from "./process.js";
export { builtWorker, runWorker } from "./worker.js";
export { binarySearch, positionLookup } from "./sorted.js";
export { parseId } from "./ids.js";
export { terminalSafe } from "./terminal.js";
export { buildCatalog, parseAssignments, resolveParams, type Resolution } from "./resolve.js";
