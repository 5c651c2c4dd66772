/**
 * The remote store: MLflow's REST API 2.0, plus the server's `mlflow-artifacts` API for artifact
 * upload (`mlflow server --serve-artifacts`, the default). Each method is one or a few endpoint
 * calls; sending, retrying, auth and the checking of answers against their schemas
 * (rest-schemas.ts) are the transport's (rest-transport.ts).
 */
import { BadParameterError, MissingArtifactError, silentLogger } from "@ms/contracts";
import { artifactApiPath, logInputs, RestLoggedModels, uploadArtifacts } from "./rest-models.js";
import { Answers } from "./rest-schemas.js";
import { MlflowParameterError, RestTransport, type RestTransportOptions } from "./rest-transport.js";
import type { ArtifactSource, Entries, LoggedModels, NewRun, RunQuery, Store } from "./store.js";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAGS } from "./tags.js";
import type { ArtifactEntry, DatasetInput, Experiment, Metric, Run, RunInfo, RunsPage, TerminalStatus } from "./types.js";
import { LIMITS, type ValidMetric } from "./validation.js";

export type { RestAuth, RetryOptions } from "./rest-transport.js";
export type RestStoreOptions = RestTransportOptions;

const API = "/api/2.0/mlflow";

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class RestStore implements Store {
  readonly kind = "rest" as const;
  readonly uri: string;
  private readonly http: RestTransport;
  private readonly artifactUris = new Map<string, string>();
  readonly loggedModels: LoggedModels;

  constructor(baseUrl: string, options: RestStoreOptions = {}) {
    this.http = new RestTransport(baseUrl, options);
    this.uri = this.http.uri;
    this.loggedModels = new RestLoggedModels(this.http, options.logger ?? silentLogger);
  }

  // ---- experiments ----------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      return (await this.http.request("GET", `${API}/experiments/get-by-name`, Answers.experiment, { query: { experiment_name: name } }))
        .experiment;
    } catch (error) {
      if (error instanceof MissingArtifactError) return undefined;
      throw error;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    return (await this.http.request("GET", `${API}/experiments/get`, Answers.experiment, { query: { experiment_id: experimentId } }))
      .experiment;
  }

  async createExperiment(name: string): Promise<Experiment> {
    const body = { name, tags: [{ key: EXPERIMENT_KIND_TAG, value: EXPERIMENT_KIND }] };
    const r = await this.http.request("POST", `${API}/experiments/create`, Answers.createExperiment, { body });
    return this.getExperiment(r.experiment_id);
  }

  async getOrCreateExperiment(name: string): Promise<Experiment> {
    const existing = await this.getExperimentByName(name);
    if (existing) return existing;
    try {
      return await this.createExperiment(name);
    } catch (error) {
      // Another process created it between our two requests.
      if (error instanceof MlflowParameterError && error.mlflowErrorCode === "RESOURCE_ALREADY_EXISTS") {
        const again = await this.getExperimentByName(name);
        if (again) return again;
      }
      throw error;
    }
  }

  async ensureExperimentTag(experimentId: string, key: string, value: string): Promise<boolean> {
    const r = await this.http.request("GET", `${API}/experiments/get`, Answers.experimentTags, { query: { experiment_id: experimentId } });
    if (r.experiment.tags.some((t) => t.key === key)) return false;
    await this.http.request("POST", `${API}/experiments/set-experiment-tag`, Answers.empty, {
      body: { experiment_id: experimentId, key, value },
    });
    return true;
  }

  async listExperiments(): Promise<Experiment[]> {
    const out: Experiment[] = [];
    let pageToken: string | undefined;
    do {
      const body = { max_results: 1000, view_type: "ACTIVE_ONLY", ...(pageToken ? { page_token: pageToken } : {}) };
      const r = await this.http.request("POST", `${API}/experiments/search`, Answers.searchExperiments, { body });
      out.push(...r.experiments);
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  // ---- runs -----------------------------------------------------------------------------

  async startRun(run: NewRun): Promise<RunInfo> {
    if (run.parentRunId !== undefined) await this.getRun(run.parentRunId);
    if (run.tags.size > LIMITS.tagsPerBatch)
      throw new BadParameterError(
        "tags",
        `at most ${LIMITS.tagsPerBatch - 3} tags can be given when a run starts; set the rest with setTags`,
      );
    const r = await this.http.request("POST", `${API}/runs/create`, Answers.run, {
      body: {
        experiment_id: run.experimentId,
        user_id: run.user,
        start_time: run.startTime,
        ...(run.runName !== undefined ? { run_name: run.runName } : {}),
        tags: [...run.tags].map(([key, value]) => ({ key, value })),
      },
    });
    const info = r.run.info;
    this.artifactUris.set(info.runId, info.artifactUri);
    return info;
  }

  async endRun(runId: string, status: TerminalStatus, endTime: number): Promise<RunInfo> {
    const r = await this.http.request("POST", `${API}/runs/update`, Answers.updateRun, {
      body: { run_id: runId, status, end_time: endTime },
    });
    return r.run_info;
  }

  async logParams(runId: string, entries: Entries): Promise<void> {
    // Refuse a changed value before sending anything, so a multi-request batch is all or nothing.
    const current = (await this.getRun(runId)).params;
    for (const [k, v] of entries) {
      if (current[k] !== undefined && current[k] !== v) {
        throw new BadParameterError(
          `param ${JSON.stringify(k)}`,
          `run ${runId} already logged it as ${JSON.stringify(current[k])}; params are immutable in MLflow, so ${JSON.stringify(v)} is refused`,
        );
      }
    }
    for (const part of chunks(entries, LIMITS.paramsPerBatch)) {
      await this.http.request("POST", `${API}/runs/log-batch`, Answers.empty, {
        body: { run_id: runId, params: part.map(([key, value]) => ({ key, value })) },
      });
    }
  }

  async logMetrics(runId: string, metrics: readonly ValidMetric[]): Promise<void> {
    for (const part of chunks(metrics, LIMITS.metricsPerBatch)) {
      await this.http.request("POST", `${API}/runs/log-batch`, Answers.empty, { body: { run_id: runId, metrics: part } });
    }
  }

  async setTags(runId: string, entries: Entries): Promise<void> {
    // set-tag for the run name, which the server mirrors into the run's name attribute.
    for (const [key, value] of entries.filter(([k]) => k === TAGS.runName)) {
      await this.http.request("POST", `${API}/runs/set-tag`, Answers.empty, { body: { run_id: runId, key, value } });
    }
    for (const part of chunks(
      entries.filter(([k]) => k !== TAGS.runName),
      LIMITS.tagsPerBatch,
    )) {
      await this.http.request("POST", `${API}/runs/log-batch`, Answers.empty, {
        body: { run_id: runId, tags: part.map(([key, value]) => ({ key, value })) },
      });
    }
  }

  /** The run's artifact root as a path of the server's mlflow-artifacts API. */
  private async artifactBase(runId: string): Promise<string> {
    const uri = this.artifactUris.get(runId) ?? (await this.getRun(runId)).info.artifactUri;
    return artifactApiPath(uri, `run ${runId}`);
  }

  async logArtifacts(runId: string, source: ArtifactSource, sub: string): Promise<void> {
    await uploadArtifacts(this.http, await this.artifactBase(runId), source, sub);
  }

  async logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void> {
    await logInputs(this.http, runId, datasets);
  }

  async listArtifacts(runId: string): Promise<ArtifactEntry[]> {
    const out: ArtifactEntry[] = [];
    const visit = async (dir: string): Promise<void> => {
      let pageToken: string | undefined;
      do {
        const query = { run_id: runId, ...(dir ? { path: dir } : {}), ...(pageToken ? { page_token: pageToken } : {}) };
        const r = await this.http.request("GET", `${API}/artifacts/list`, Answers.listArtifacts, { query });
        for (const f of r.files) {
          if (f.is_dir) await visit(f.path);
          else out.push({ path: f.path, isDir: false, fileSize: f.file_size ?? undefined });
        }
        pageToken = r.next_page_token;
      } while (pageToken);
    };
    await visit("");
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  async getRun(runId: string): Promise<Run> {
    return (await this.http.request("GET", `${API}/runs/get`, Answers.run, { query: { run_id: runId } })).run;
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const query = { run_id: runId, metric_key: key, max_results: "25000", ...(pageToken ? { page_token: pageToken } : {}) };
      const r = await this.http.request("GET", `${API}/metrics/get-history`, Answers.metricHistory, { query });
      out.push(...r.metrics);
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  async searchRuns(query: RunQuery): Promise<RunsPage> {
    const r = await this.http.request("POST", `${API}/runs/search`, Answers.searchRuns, {
      body: {
        experiment_ids: query.experimentIds,
        filter: buildFilter(query),
        run_view_type: "ACTIVE_ONLY",
        max_results: query.maxResults,
        order_by: ["attributes.start_time DESC"],
        ...(query.pageToken ? { page_token: query.pageToken } : {}),
      },
    });
    return r.next_page_token ? { runs: r.runs, nextPageToken: r.next_page_token } : { runs: r.runs };
  }
}

function quote(value: string, what: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new BadParameterError(what, "a search value cannot contain both ' and \" (MLflow's filter syntax has no escape for that)");
}

/** MLflow's search filter syntax for our equality filters (keys are validated, so never hold a backtick). */
export function buildFilter(query: Pick<RunQuery, "tags" | "params" | "status">): string {
  const parts: string[] = [];
  for (const [k, v] of query.tags) parts.push(`tags.\`${k}\` = ${quote(v, `tag ${k}`)}`);
  for (const [k, v] of query.params) parts.push(`params.\`${k}\` = ${quote(v, `param ${k}`)}`);
  if (query.status !== undefined) parts.push(`attributes.status = '${query.status}'`);
  return parts.join(" AND ");
}
