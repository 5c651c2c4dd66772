/**
 * The `Tracker` boundary: every call is checked and normalised here, once, before it reaches a
 * store (file or REST), so the stores trust typed input. The same layer keeps the per-run
 * bookkeeping both stores share: which runs lost a write to an unavailable server (they are never
 * reported FINISHED) and which runs could not be ended (`unclosedRuns()`).
 */
import { promises as fs } from "node:fs";
import { BadParameterError, NetworkError, TrackingUnavailableError } from "@ms/contracts";
import { currentUser } from "./common.js";
import type { LazyLogger, Store } from "./store.js";
import { validateDatasets, validateModelId, validateModelName } from "./validation-models.js";
import { TAGS } from "./tags.js";
import type {
  ArtifactEntry,
  CreateLoggedModelOptions,
  DatasetInput,
  Experiment,
  LoggedModel,
  Metric,
  MetricInput,
  ParamValue,
  Run,
  RunInfo,
  RunsPage,
  SearchRunsOptions,
  StartRunOptions,
  TerminalStatus,
  Tracker,
  UnclosedRun,
} from "./types.js";
import {
  validateArtifactPath,
  validateExperimentId,
  validateExperimentName,
  validateKey,
  validateMaxResults,
  validateMetrics,
  validateParams,
  validateRunId,
  validateStatus,
  validateTags,
  validateTagValue,
  validateTime,
} from "./validation.js";

function filterEntries(kind: "param" | "tag", filter: Record<string, string> | undefined): Array<[string, string]> {
  if (filter === undefined) return [];
  if (filter === null || typeof filter !== "object") throw new BadParameterError(`${kind}s`, "must be an object of key -> value");
  return Object.entries(filter).map(([k, v]) => {
    if (typeof v !== "string")
      throw new BadParameterError(`${kind} ${JSON.stringify(k)}`, `search value must be a string, got ${v === null ? "null" : typeof v}`);
    return [validateKey(kind, k), v];
  });
}

/** Failures that mean the write may not have reached the store. */
function lostWrite(error: unknown): boolean {
  return error instanceof TrackingUnavailableError || error instanceof NetworkError;
}

export class ValidatingTracker implements Tracker {
  readonly kind: "file" | "rest";
  readonly uri: string;
  /** Runs started here and not ended yet. */
  private readonly open = new Map<string, UnclosedRun>();
  /** Runs whose last endRun failed. */
  private readonly failedEnds = new Map<string, UnclosedRun>();
  private readonly lostWrites = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly log: LazyLogger,
  ) {
    this.kind = store.kind;
    this.uri = store.uri;
  }

  // ---- experiments ----------------------------------------------------------------------
  // Every method is async, so that bad input rejects the promise rather than throwing.

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    return this.store.getExperimentByName(validateExperimentName(name));
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    return this.store.getExperiment(validateExperimentId(experimentId));
  }

  async createExperiment(name: string): Promise<Experiment> {
    return this.store.createExperiment(validateExperimentName(name));
  }

  async getOrCreateExperiment(name: string): Promise<Experiment> {
    return this.store.getOrCreateExperiment(validateExperimentName(name));
  }

  async listExperiments(): Promise<Experiment[]> {
    return this.store.listExperiments();
  }

  // ---- runs -----------------------------------------------------------------------------

  async startRun(options: StartRunOptions): Promise<RunInfo> {
    if (options === null || typeof options !== "object")
      throw new BadParameterError("startRun", "needs { experimentId, runName?, parentRunId?, tags?, startTime? }");
    const experimentId = validateExperimentId(options.experimentId);
    const tags = validateTags(options.tags ?? {});
    const parentRunId = options.parentRunId === undefined ? undefined : validateRunId(options.parentRunId);
    const startTime = options.startTime === undefined ? Date.now() : validateTime("startTime", options.startTime);
    const given = tags.find(([k]) => k === TAGS.runName)?.[1];
    if (options.runName !== undefined && given !== undefined && given !== options.runName) {
      throw new BadParameterError(
        "runName",
        `differs from the ${TAGS.runName} tag (${JSON.stringify(options.runName)} vs ${JSON.stringify(given)})`,
      );
    }
    const runName = options.runName ?? given;
    if (runName !== undefined) validateTagValue(TAGS.runName, runName);
    const user = currentUser();
    const all = new Map<string, string>([[TAGS.user, user], ...tags]);
    if (runName !== undefined) all.set(TAGS.runName, runName);
    if (parentRunId !== undefined) all.set(TAGS.parent, parentRunId);
    const info = await this.store.startRun({ experimentId, runName, parentRunId, tags: all, user, startTime });
    this.open.set(info.runId, {
      runId: info.runId,
      trackingUri: this.uri,
      experimentId: info.experimentId,
      runName: info.runName,
      startTime: info.startTime,
    });
    return info;
  }

  async endRun(runId: string, status: TerminalStatus = "FINISHED", endTime = Date.now()): Promise<RunInfo> {
    validateRunId(runId);
    validateStatus(status, true);
    validateTime("endTime", endTime);
    // A run that lost data is never reported FINISHED.
    const recorded: TerminalStatus = this.lostWrites.has(runId) && status === "FINISHED" ? "FAILED" : status;
    let info: RunInfo;
    try {
      info = await this.store.endRun(runId, recorded, endTime);
    } catch (error) {
      const entry: UnclosedRun = {
        ...(this.open.get(runId) ?? { runId, trackingUri: this.uri }),
        wantedStatus: recorded,
        error: (error as Error).message,
      };
      this.failedEnds.set(runId, entry);
      this.log().warn(
        { trackingUri: this.uri, runId, status: recorded, error: entry.error },
        `could not end run ${runId} as ${recorded} in ${this.uri}; it stays RUNNING there`,
      );
      throw error;
    }
    this.open.delete(runId);
    this.failedEnds.delete(runId);
    this.lostWrites.delete(runId);
    if (recorded !== status) {
      throw new TrackingUnavailableError(
        `run ${runId} lost writes while ${this.uri} was unavailable, so it was ended as FAILED instead of FINISHED`,
      );
    }
    return info;
  }

  unclosedRuns(): UnclosedRun[] {
    const out = new Map(this.open);
    for (const [id, entry] of this.failedEnds) out.set(id, entry);
    return [...out.values()].map((r) => ({ ...r }));
  }

  /** Runs a write for `runId`, remembering when it may not have reached the store. */
  private async write(runId: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      if (lostWrite(error)) this.lostWrites.add(runId);
      throw error;
    }
  }

  async logParams(runId: string, params: Record<string, ParamValue>): Promise<void> {
    validateRunId(runId);
    const entries = validateParams(params);
    if (entries.length === 0) return;
    await this.write(runId, () => this.store.logParams(runId, entries));
  }

  async logMetrics(runId: string, metrics: readonly MetricInput[]): Promise<void> {
    validateRunId(runId);
    const valid = validateMetrics(metrics);
    await this.write(runId, () => this.store.logMetrics(runId, valid));
  }

  async setTags(runId: string, tags: Record<string, string>): Promise<void> {
    validateRunId(runId);
    const entries = validateTags(tags);
    await this.write(runId, () => this.store.setTags(runId, entries));
  }

  async logArtifacts(runId: string, localPath: string, artifactPath?: string): Promise<void> {
    validateRunId(runId);
    const sub = validateArtifactPath(artifactPath);
    if (typeof localPath !== "string" || localPath === "") throw new BadParameterError("artifact", "needs a local file or directory path");
    const stat = await fs.stat(localPath).catch(() => undefined);
    if (!stat) throw new BadParameterError("artifact", `${localPath} does not exist`);
    await this.write(runId, () => this.store.logArtifacts(runId, { path: localPath, isDirectory: stat.isDirectory() }, sub));
  }

  async listArtifacts(runId: string): Promise<ArtifactEntry[]> {
    return this.store.listArtifacts(validateRunId(runId));
  }

  async getRun(runId: string): Promise<Run> {
    return this.store.getRun(validateRunId(runId));
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    validateRunId(runId);
    return this.store.getMetricHistory(runId, validateKey("metric", key));
  }

  async searchRuns(options: SearchRunsOptions): Promise<RunsPage> {
    if (options === null || typeof options !== "object" || !Array.isArray(options.experimentIds)) {
      throw new BadParameterError("experimentIds", "searchRuns needs { experimentIds: string[] }");
    }
    const maxResults = validateMaxResults(options.maxResults);
    const experimentIds = options.experimentIds.map(validateExperimentId);
    const status = options.status === undefined ? undefined : validateStatus(options.status);
    const pageToken = options.pageToken === undefined || options.pageToken === "" ? undefined : options.pageToken;
    if (pageToken !== undefined && typeof pageToken !== "string")
      throw new BadParameterError("pageToken", "must be a string from a previous page");
    return this.store.searchRuns({
      experimentIds,
      tags: filterEntries("tag", options.tags),
      params: filterEntries("param", options.params),
      status,
      maxResults,
      pageToken,
    });
  }

  // ---- datasets and logged models ---------------------------------------------------------

  async ensureExperimentTag(experimentId: string, key: string, value: string): Promise<boolean> {
    const id = validateExperimentId(experimentId);
    return this.store.ensureExperimentTag(id, validateKey("tag", key), validateTagValue(key, value));
  }

  async logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void> {
    validateRunId(runId);
    const valid = validateDatasets(datasets);
    if (valid.length) await this.write(runId, () => this.store.logInputs(runId, valid));
  }

  /** The store's logged-model API, or an error saying the store has none (call `createLoggedModel` first). */
  private models(what: string) {
    const models = this.store.loggedModels;
    if (!models) throw new BadParameterError(what, `the tracking store ${this.uri} has no logged models (MLflow 3's LoggedModel)`);
    return models;
  }

  async createLoggedModel(options: CreateLoggedModelOptions): Promise<LoggedModel | undefined> {
    if (options === null || typeof options !== "object") throw new BadParameterError("createLoggedModel", "needs { experimentId, name }");
    const experimentId = validateExperimentId(options.experimentId);
    const name = validateModelName(options.name);
    const sourceRunId = options.sourceRunId === undefined ? undefined : validateRunId(options.sourceRunId);
    const modelType = options.modelType === undefined ? undefined : validateTagValue("modelType", options.modelType);
    const tags = validateTags(options.tags ?? {});
    const params = validateParams(options.params ?? {});
    if (!this.store.loggedModels) return undefined;
    return this.store.loggedModels.create({ experimentId, name, sourceRunId, modelType, tags, params });
  }

  async logLoggedModelArtifacts(modelId: string, localPath: string): Promise<void> {
    const id = validateModelId(modelId);
    if (typeof localPath !== "string" || localPath === "") throw new BadParameterError("artifact", "needs a local file or directory path");
    const stat = await fs.stat(localPath).catch(() => undefined);
    if (!stat) throw new BadParameterError("artifact", `${localPath} does not exist`);
    await this.models("logLoggedModelArtifacts").logArtifacts(id, { path: localPath, isDirectory: stat.isDirectory() });
  }

  async finalizeLoggedModel(modelId: string, status: "READY" | "FAILED"): Promise<LoggedModel> {
    const id = validateModelId(modelId);
    if (status !== "READY" && status !== "FAILED") throw new BadParameterError("status", `must be READY or FAILED, got ${String(status)}`);
    return this.models("finalizeLoggedModel").finalize(id, status);
  }

  async logOutputs(runId: string, models: ReadonlyArray<{ modelId: string; step?: number }>): Promise<void> {
    validateRunId(runId);
    if (!Array.isArray(models)) throw new BadParameterError("models", "must be an array of { modelId, step? }");
    const valid = models.map((m) => {
      if (m.step !== undefined && (!Number.isSafeInteger(m.step) || m.step < 0))
        throw new BadParameterError("step", `must be a non-negative integer, got ${String(m.step)}`);
      return { modelId: validateModelId(m.modelId), step: m.step ?? 0 };
    });
    const api = this.models("logOutputs");
    if (valid.length) await this.write(runId, () => api.logOutputs(runId, valid));
  }

  async searchLoggedModels(experimentIds: readonly string[]): Promise<LoggedModel[]> {
    if (!Array.isArray(experimentIds)) throw new BadParameterError("experimentIds", "must be an array of experiment ids");
    const ids = experimentIds.map(validateExperimentId);
    return this.store.loggedModels ? this.store.loggedModels.search(ids) : [];
  }
}
