/**
 * The vocabulary of @ms/tracking: experiments, runs, params, metrics and tags as MLflow models
 * them, and the `Tracker` interface that both stores (MLflow file store, MLflow REST server)
 * implement, so the driver never knows which one it talks to.
 */

export const RUN_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** The statuses a run can be ended with. */
export type TerminalStatus = "FINISHED" | "FAILED" | "KILLED";

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: "active" | "deleted";
  creationTime: number | null;
  lastUpdateTime: number | null;
}

export interface Metric {
  key: string;
  /** NaN and +-Infinity are valid, as in MLflow. */
  value: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  step: number;
}

export interface RunInfo {
  runId: string;
  runName: string;
  experimentId: string;
  userId: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  artifactUri: string;
  lifecycleStage: "active" | "deleted";
}

export interface Run {
  info: RunInfo;
  params: Record<string, string>;
  /** The latest value of each metric (highest step, then timestamp), as MLflow reports it. */
  metrics: Record<string, Metric>;
  /** All tags, including MLflow's system tags (`mlflow.runName`, `mlflow.parentRunId`, ...). */
  tags: Record<string, string>;
}

export interface StartRunOptions {
  experimentId: string;
  runName?: string;
  /** Makes this a nested run (MLflow's `mlflow.parentRunId` tag). */
  parentRunId?: string;
  tags?: Record<string, string>;
  /** Milliseconds since the epoch; default now. */
  startTime?: number;
}

export interface MetricInput {
  key: string;
  value: number;
  /** Default 0, as in MLflow. */
  step?: number;
  /** Milliseconds since the epoch; default now. */
  timestamp?: number;
}

export type ParamValue = string | number | boolean;

export interface SearchRunsOptions {
  experimentIds: readonly string[];
  /** Runs whose tags equal all of these. */
  tags?: Record<string, string>;
  /** Runs whose params equal all of these. */
  params?: Record<string, string>;
  status?: RunStatus;
  /** Page size; default 100, at most 1000. */
  maxResults?: number;
  /** From the previous page's `nextPageToken`. */
  pageToken?: string;
}

export interface RunsPage {
  /** Newest first (start time, then run id). */
  runs: Run[];
  nextPageToken?: string;
  /** Runs the search could not read and left out (a damaged meta.yaml, a torn metric line), with why. */
  skipped?: SkippedRun[];
}

/** A run a search left out because its files could not be read. */
export interface SkippedRun {
  runId: string;
  reason: string;
}

export interface ArtifactEntry {
  /** Relative to the run's artifact root, `/`-separated. */
  path: string;
  isDir: boolean;
  fileSize?: number;
}

/** A run this tracker started (or tried to end) that is not ended in the store. */
export interface UnclosedRun {
  runId: string;
  /** The tracking URI (credentials removed). */
  trackingUri: string;
  /** Known when this tracker started the run. */
  experimentId?: string;
  runName?: string;
  startTime?: number;
  /** The status the last failed `endRun` asked for; absent until an `endRun` has failed. */
  wantedStatus?: TerminalStatus;
  /** Why the last `endRun` failed. */
  error?: string;
}

/** A dataset a run used, as MLflow's `log_inputs` records it (the run page's "Datasets"). */
export interface DatasetInput {
  name: string;
  /** At most 36 characters (MLflow's limit). */
  digest: string;
  /** Where it came from, e.g. "local", "http", "code". */
  sourceType: string;
  /** JSON text, e.g. `{"uri": "file:///data/ratings.csv"}`. */
  source: string;
  /** JSON text, e.g. `{"mlflow_colspec": [{"type": "long", "name": "userId", "required": true}]}`. */
  schema?: string;
  /** JSON text, e.g. `{"num_rows": 100836}`. */
  profile?: string;
  /** The input's `mlflow.data.context` tag ("training", "evaluation", ...). */
  context?: string;
}

export const LOGGED_MODEL_STATUSES = ["PENDING", "READY", "FAILED"] as const;
export type LoggedModelStatus = (typeof LOGGED_MODEL_STATUSES)[number];

/** MLflow 3's LoggedModel entity: a model with its own artifacts, linked to the run that produced it. */
export interface LoggedModel {
  modelId: string;
  experimentId: string;
  name: string;
  artifactUri: string;
  status: LoggedModelStatus;
  sourceRunId?: string;
  tags: Record<string, string>;
}

export interface CreateLoggedModelOptions {
  experimentId: string;
  name: string;
  sourceRunId?: string;
  modelType?: string;
  tags?: Record<string, string>;
  params?: Record<string, ParamValue>;
}

/** One store of experiments and runs. Every method validates its input before writing anything. */
export interface Tracker {
  readonly kind: "file" | "rest";
  /** The tracking URI with any credentials removed; safe to log. */
  readonly uri: string;
  getExperimentByName(name: string): Promise<Experiment | undefined>;
  getExperiment(experimentId: string): Promise<Experiment>;
  createExperiment(name: string): Promise<Experiment>;
  /** Safe when several processes ask for the same name at once. */
  getOrCreateExperiment(name: string): Promise<Experiment>;
  listExperiments(): Promise<Experiment[]>;
  startRun(options: StartRunOptions): Promise<RunInfo>;
  endRun(runId: string, status?: TerminalStatus, endTime?: number): Promise<RunInfo>;
  /** Params are immutable: logging a key again with another value is a BadParameterError. */
  logParams(runId: string, params: Record<string, ParamValue>): Promise<void>;
  logMetrics(runId: string, metrics: readonly MetricInput[]): Promise<void>;
  setTags(runId: string, tags: Record<string, string>): Promise<void>;
  /** Copies a file, or a directory's files recursively, under `artifactPath` of the run's artifacts. */
  logArtifacts(runId: string, localPath: string, artifactPath?: string): Promise<void>;
  listArtifacts(runId: string): Promise<ArtifactEntry[]>;
  getRun(runId: string): Promise<Run>;
  getMetricHistory(runId: string, key: string): Promise<Metric[]>;
  searchRuns(options: SearchRunsOptions): Promise<RunsPage>;
  /** Sets an experiment's tag unless the experiment already has that key (whatever its value); true when it set it. */
  ensureExperimentTag(experimentId: string, key: string, value: string): Promise<boolean>;
  /** Records datasets as inputs of a run (MLflow's `log_inputs`); a dataset logged before is linked again, not duplicated. */
  logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void>;
  /**
   * MLflow 3's LoggedModel, PENDING until finalized; undefined where the store has no such entity
   * (the file store, a server older than MLflow 3), so the caller skips the rest.
   */
  createLoggedModel(options: CreateLoggedModelOptions): Promise<LoggedModel | undefined>;
  /** Uploads a file or a directory's files to the logged model's artifacts. */
  logLoggedModelArtifacts(modelId: string, localPath: string): Promise<void>;
  finalizeLoggedModel(modelId: string, status: Exclude<LoggedModelStatus, "PENDING">): Promise<LoggedModel>;
  /** Links logged models to a run as its outputs (the run page's "Logged models"). */
  logOutputs(runId: string, models: ReadonlyArray<{ modelId: string; step?: number }>): Promise<void>;
  /** The logged models of these experiments (empty where the store has none). */
  searchLoggedModels(experimentIds: readonly string[]): Promise<LoggedModel[]>;
  /**
   * Runs this tracker started that are not ended yet, and runs whose `endRun` failed (the store
   * still shows them RUNNING). Empty after a run whose every run was ended.
   */
  unclosedRuns(): UnclosedRun[];
}
