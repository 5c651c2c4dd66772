/**
 * What a store (MLflow file store, MLflow REST server) implements: the `Tracker` operations over
 * input that the validating layer (`ValidatingTracker`) has already checked and normalised, so a
 * store only translates to its storage and never re-checks keys, values, ids or statuses.
 */
import type { Logger } from "@ms/contracts";
import type {
  ArtifactEntry,
  DatasetInput,
  Experiment,
  LoggedModel,
  Metric,
  Run,
  RunInfo,
  RunsPage,
  RunStatus,
  TerminalStatus,
} from "./types.js";
import type { ValidMetric } from "./validation.js";

export type Entries = ReadonlyArray<readonly [string, string]>;

export interface NewRun {
  experimentId: string;
  /** Undefined: the store names the run (file store `run-<id>`, a server its own). */
  runName: string | undefined;
  parentRunId: string | undefined;
  /** Every tag to set at creation, including mlflow.user, and mlflow.runName / mlflow.parentRunId when given. */
  tags: ReadonlyMap<string, string>;
  user: string;
  startTime: number;
}

export interface RunQuery {
  experimentIds: readonly string[];
  tags: Entries;
  params: Entries;
  status: RunStatus | undefined;
  maxResults: number;
  pageToken: string | undefined;
}

/** A local file or directory to log as artifacts; it existed when validated. */
export interface ArtifactSource {
  path: string;
  isDirectory: boolean;
}

/** A logger made only when something is logged (a pretty terminal logger costs ~40 ms to load). */
export type LazyLogger = () => Logger;

export interface Store {
  readonly kind: "file" | "rest";
  /** The tracking URI with any credentials removed; safe to log. */
  readonly uri: string;
  getExperimentByName(name: string): Promise<Experiment | undefined>;
  getExperiment(experimentId: string): Promise<Experiment>;
  createExperiment(name: string): Promise<Experiment>;
  getOrCreateExperiment(name: string): Promise<Experiment>;
  listExperiments(): Promise<Experiment[]>;
  startRun(run: NewRun): Promise<RunInfo>;
  endRun(runId: string, status: TerminalStatus, endTime: number): Promise<RunInfo>;
  /** Never called with an empty batch. */
  logParams(runId: string, params: Entries): Promise<void>;
  logMetrics(runId: string, metrics: readonly ValidMetric[]): Promise<void>;
  setTags(runId: string, tags: Entries): Promise<void>;
  /** `artifactPath` is "" for the artifact root. */
  logArtifacts(runId: string, source: ArtifactSource, artifactPath: string): Promise<void>;
  listArtifacts(runId: string): Promise<ArtifactEntry[]>;
  getRun(runId: string): Promise<Run>;
  getMetricHistory(runId: string, key: string): Promise<Metric[]>;
  searchRuns(query: RunQuery): Promise<RunsPage>;
  ensureExperimentTag(experimentId: string, key: string, value: string): Promise<boolean>;
  logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void>;
  /** MLflow 3's logged models: a store without them leaves this out (see `LoggedModels`). */
  readonly loggedModels?: LoggedModels;
}

/** A logged model to create, its tags and params validated. */
export interface NewLoggedModel {
  experimentId: string;
  name: string;
  sourceRunId: string | undefined;
  modelType: string | undefined;
  tags: Entries;
  params: Entries;
}

/** The LoggedModel API of a store that has one; `create` resolves undefined when the server turns out not to. */
export interface LoggedModels {
  create(model: NewLoggedModel): Promise<LoggedModel | undefined>;
  logArtifacts(modelId: string, source: ArtifactSource): Promise<void>;
  finalize(modelId: string, status: "READY" | "FAILED"): Promise<LoggedModel>;
  logOutputs(runId: string, models: ReadonlyArray<{ modelId: string; step: number }>): Promise<void>;
  search(experimentIds: readonly string[]): Promise<LoggedModel[]>;
}
