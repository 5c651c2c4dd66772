/**
 * @ms/tracking: MLflow-compatible run tracking. `createTracker(uri)` opens either MLflow's file
 * store (a path, `file:` URI, or `./mlruns` by default) or an MLflow tracking server over its
 * REST API (`http(s)://`); both implement the same `Tracker`. `runsCommand(argv)` is the
 * `ms-runs` / `ms runs` command line. `RunLog` writes a pipeline run (a parent, a child run per
 * step) through a `Tracker`; `writeHistory`/`replay` keep a step's metric history with its cached
 * result and log it again for a later hit. `openRegistry(uri)` is the model registry of an MLflow
 * server (registered models, versions, aliases).
 */
export { createTracker, resolveTrackingUri, DEFAULT_TRACKING_DIR, type TrackerOptions, type TrackingTarget } from "./tracker.js";
export type { RetryOptions, RestAuth } from "./rest-store.js";
export { LIMITS } from "./validation.js";
export { TAGS, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, type TagName } from "./tags.js";
export { recordUnclosedRuns, UNCLOSED_RUNS_FILE } from "./unclosed.js";
export { RUN_STATUSES, LOGGED_MODEL_STATUSES } from "./types.js";
export type {
  Tracker,
  Experiment,
  Run,
  RunInfo,
  RunStatus,
  TerminalStatus,
  Metric,
  MetricInput,
  ParamValue,
  StartRunOptions,
  SearchRunsOptions,
  RunsPage,
  SkippedRun,
  ArtifactEntry,
  UnclosedRun,
  DatasetInput,
  LoggedModel,
  LoggedModelStatus,
  CreateLoggedModelOptions,
} from "./types.js";
export { runsCommand, type RunsCommandOptions } from "./cli.js";
export { RunLog, BufferedMetrics, gitCommit, type LogArtifacts } from "./run-log.js";
export {
  openRegistry,
  ModelRegistry,
  validateModelName,
  validateAlias,
  MODEL_VERSION_STATUSES,
  type ModelVersion,
  type ModelVersionStatus,
  type RegisteredModel,
  type WaitOptions,
} from "./registry.js";
export { writeHistory, readHistory, replay, HISTORY_FILE, type HistoryPoint } from "./history.js";
