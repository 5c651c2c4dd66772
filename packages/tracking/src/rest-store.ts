/**
 * The remote store: MLflow's REST API 2.0 over Node's global fetch, plus the server's
 * `mlflow-artifacts` API for artifact upload (`mlflow server --serve-artifacts`, the default).
 *
 * Every request goes through one function that adds auth (bearer token or basic), retries
 * connection errors, timeouts, 429 and 5xx with exponential backoff and jitter inside a bounded
 * total time, and turns failures into the project's error classes with secrets scrubbed out.
 * A run that lost a write is remembered: ending it as FINISHED records FAILED instead, so a run
 * with missing data is never reported finished.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { BadParameterError, MissingArtifactError, MsError, NetworkError, TrackingUnavailableError } from "@ms/contracts";
import type { ArtifactEntry, Experiment, Metric, MetricInput, ParamValue, Run, RunInfo, RunsPage, RunStatus, SearchRunsOptions, StartRunOptions, TerminalStatus, Tracker } from "./types.js";
import {
  LIMITS,
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
} from "./validation.js";
import { currentUser, PARENT_RUN_ID_TAG, RUN_NAME_TAG, USER_TAG } from "./common.js";

export interface RetryOptions {
  /** Give up once this much time has passed since the first attempt (default 60 s). */
  maxTotalMs?: number;
  /** The first backoff delay; doubles each attempt (default 250 ms). */
  initialDelayMs?: number;
  /** The cap on one backoff delay (default 8 s). */
  maxDelayMs?: number;
  /** The timeout of one HTTP request (default 30 s, never beyond the total budget). */
  requestTimeoutMs?: number;
}

export interface RestAuth {
  token?: string;
  username?: string;
  password?: string;
}

export interface RestStoreOptions {
  auth?: RestAuth;
  retry?: RetryOptions;
}

const RETRY_STATUSES = new Set([408, 429]);

function encodeNumber(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "Infinity";
  if (v === Number.NEGATIVE_INFINITY) return "-Infinity";
  return v;
}

/** Protobuf JSON renders non-finite doubles as strings and may render int64 as strings. */
function decodeNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v === "NaN") return Number.NaN;
  if (v === "Infinity") return Number.POSITIVE_INFINITY;
  if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
  return Number(v ?? 0);
}

function optNumber(v: unknown): number | null {
  return v === undefined || v === null || v === "" ? null : decodeNumber(v);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ApiError {
  error_code?: string;
  message?: string;
}

type Json = Record<string, unknown>;

export class RestStore implements Tracker {
  readonly kind = "rest" as const;
  readonly uri: string;
  private readonly base: URL;
  private readonly authHeader: string | undefined;
  private readonly secrets: string[];
  private readonly retry: Required<RetryOptions>;
  private readonly lostWrites = new Set<string>();
  private readonly artifactUris = new Map<string, string>();

  constructor(baseUrl: string, options: RestStoreOptions = {}) {
    const url = new URL(baseUrl);
    const auth: RestAuth = { ...options.auth };
    // Credentials in the URI itself are honoured as basic auth and removed from anything we print.
    if (url.username || url.password) {
      auth.username ??= decodeURIComponent(url.username);
      auth.password ??= decodeURIComponent(url.password);
      url.username = "";
      url.password = "";
    }
    url.pathname = url.pathname.replace(/\/+$/, "");
    url.search = "";
    url.hash = "";
    this.base = url;
    this.uri = url.href.replace(/\/$/, "");
    this.secrets = [];
    if (auth.token) {
      this.authHeader = `Bearer ${auth.token}`;
      this.secrets.push(auth.token);
    } else if (auth.username !== undefined && auth.password !== undefined) {
      const b64 = Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
      this.authHeader = `Basic ${b64}`;
      this.secrets.push(b64, auth.password);
    }
    this.secrets = this.secrets.filter((s) => s.length >= 3);
    const r = options.retry ?? {};
    this.retry = {
      maxTotalMs: r.maxTotalMs ?? 60_000,
      initialDelayMs: r.initialDelayMs ?? 250,
      maxDelayMs: r.maxDelayMs ?? 8_000,
      requestTimeoutMs: r.requestTimeoutMs ?? 30_000,
    };
  }

  /** Removes every secret we hold from a text before it reaches an error or a log. */
  private redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join("***");
    return out;
  }

  private async request(method: "GET" | "POST" | "PUT", apiPath: string, opts: { query?: Record<string, string>; body?: unknown; raw?: Uint8Array } = {}): Promise<Json> {
    const url = new URL(this.base.href.replace(/\/$/, "") + apiPath);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { "user-agent": "ms-tracking", accept: "application/json" };
    if (this.authHeader) headers.authorization = this.authHeader;
    let body: string | Uint8Array | undefined;
    if (opts.raw !== undefined) {
      body = opts.raw;
      headers["content-type"] = "application/octet-stream";
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body, (_k, v: unknown) => (typeof v === "number" ? encodeNumber(v) : v));
      headers["content-type"] = "application/json";
    }
    const what = `${method} ${url.pathname}`;
    const started = Date.now();
    let attempt = 0;
    let lastProblem = "";
    for (;;) {
      const remaining = this.retry.maxTotalMs - (Date.now() - started);
      let response: Response | undefined;
      try {
        response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(Math.max(1, Math.min(this.retry.requestTimeoutMs, remaining))) });
      } catch (error) {
        const e = error as Error & { cause?: { code?: string; message?: string } };
        lastProblem = e.name === "TimeoutError" ? "request timed out" : `${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}`;
      }
      if (response) {
        const text = await response.text().catch(() => "");
        if (response.ok) {
          try {
            return text.trim() === "" ? {} : (JSON.parse(text) as Json);
          } catch {
            throw new NetworkError(`${this.uri}: ${what} answered ${response.status} with a body that is not JSON: ${this.redact(text.slice(0, 200))}`);
          }
        }
        if (!(RETRY_STATUSES.has(response.status) || response.status >= 500)) throw this.apiError(response.status, text, what);
        lastProblem = `HTTP ${response.status} ${this.redact(text.slice(0, 200)).trim()}`;
      }
      attempt++;
      const delay = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      if (Date.now() - started + delay >= this.retry.maxTotalMs) {
        throw new TrackingUnavailableError(
          `MLflow server ${this.uri} unavailable: ${what} failed ${attempt} time(s) over ${((Date.now() - started) / 1000).toFixed(1)}s (last: ${this.redact(lastProblem)})`,
        );
      }
      await sleep(delay);
    }
  }

  private apiError(status: number, text: string, what: string): MsError {
    let parsed: ApiError = {};
    try {
      parsed = JSON.parse(text) as ApiError;
    } catch {
      parsed = { message: text.slice(0, 300) };
    }
    const message = this.redact(`${this.uri}: ${what}: ${parsed.error_code ?? `HTTP ${status}`}: ${parsed.message ?? ""}`.trim());
    if (status === 401 || status === 403) {
      return new TrackingUnavailableError(`${message} (check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)`);
    }
    if (parsed.error_code === "RESOURCE_DOES_NOT_EXIST" || status === 404) return new MissingArtifactError(message);
    if (parsed.error_code === "INVALID_PARAMETER_VALUE" || parsed.error_code === "RESOURCE_ALREADY_EXISTS" || status === 400) {
      const e = new BadParameterError("mlflow", message);
      (e as { mlflowErrorCode?: string }).mlflowErrorCode = parsed.error_code;
      return e;
    }
    return new NetworkError(message);
  }

  /** Runs a write for `runId`, remembering when it could not reach the server. */
  private async write<T>(runId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof TrackingUnavailableError || error instanceof NetworkError) this.lostWrites.add(runId);
      throw error;
    }
  }

  // ---- experiments ----------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    validateExperimentName(name);
    try {
      const r = await this.request("GET", "/api/2.0/mlflow/experiments/get-by-name", { query: { experiment_name: name } });
      return toExperiment(r.experiment as Json);
    } catch (error) {
      if (error instanceof MissingArtifactError) return undefined;
      throw error;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    validateExperimentId(experimentId);
    const r = await this.request("GET", "/api/2.0/mlflow/experiments/get", { query: { experiment_id: experimentId } });
    return toExperiment(r.experiment as Json);
  }

  async createExperiment(name: string): Promise<Experiment> {
    validateExperimentName(name);
    const r = await this.request("POST", "/api/2.0/mlflow/experiments/create", { body: { name } });
    return this.getExperiment(String(r.experiment_id));
  }

  async getOrCreateExperiment(name: string): Promise<Experiment> {
    const existing = await this.getExperimentByName(name);
    if (existing) return existing;
    try {
      return await this.createExperiment(name);
    } catch (error) {
      // Another process created it between our two requests.
      if ((error as { mlflowErrorCode?: string }).mlflowErrorCode === "RESOURCE_ALREADY_EXISTS") {
        const again = await this.getExperimentByName(name);
        if (again) return again;
      }
      throw error;
    }
  }

  async listExperiments(): Promise<Experiment[]> {
    const out: Experiment[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.request("POST", "/api/2.0/mlflow/experiments/search", { body: { max_results: 1000, view_type: "ACTIVE_ONLY", ...(pageToken ? { page_token: pageToken } : {}) } });
      for (const e of (r.experiments as Json[] | undefined) ?? []) out.push(toExperiment(e));
      pageToken = (r.next_page_token as string | undefined) || undefined;
    } while (pageToken);
    return out;
  }

  // ---- runs -----------------------------------------------------------------------------

  async startRun(options: StartRunOptions): Promise<RunInfo> {
    const experimentId = validateExperimentId(options.experimentId);
    const tags = validateTags(options.tags ?? {});
    if (options.parentRunId !== undefined) await this.getRun(options.parentRunId);
    const given = tags.find(([k]) => k === RUN_NAME_TAG)?.[1];
    if (options.runName !== undefined && given !== undefined && given !== options.runName) {
      throw new BadParameterError("runName", `differs from the ${RUN_NAME_TAG} tag (${JSON.stringify(options.runName)} vs ${JSON.stringify(given)})`);
    }
    const runName = options.runName ?? given;
    if (runName !== undefined) validateTagValue(RUN_NAME_TAG, runName);
    const user = currentUser();
    const all = new Map<string, string>([[USER_TAG, user], ...tags]);
    if (runName !== undefined) all.set(RUN_NAME_TAG, runName);
    if (options.parentRunId !== undefined) all.set(PARENT_RUN_ID_TAG, options.parentRunId);
    if (all.size > LIMITS.tagsPerBatch) throw new BadParameterError("tags", `at most ${LIMITS.tagsPerBatch - 3} tags can be given when a run starts; set the rest with setTags`);
    const r = await this.request("POST", "/api/2.0/mlflow/runs/create", {
      body: {
        experiment_id: experimentId,
        user_id: user,
        start_time: options.startTime ?? Date.now(),
        ...(runName !== undefined ? { run_name: runName } : {}),
        tags: [...all].map(([key, value]) => ({ key, value })),
      },
    });
    const info = toRunInfo(((r.run as Json).info as Json) ?? {});
    this.artifactUris.set(info.runId, info.artifactUri);
    return info;
  }

  async endRun(runId: string, status: TerminalStatus = "FINISHED", endTime = Date.now()): Promise<RunInfo> {
    validateRunId(runId);
    validateStatus(status, true);
    const lost = this.lostWrites.has(runId);
    const recorded: TerminalStatus = lost && status === "FINISHED" ? "FAILED" : status;
    const r = await this.request("POST", "/api/2.0/mlflow/runs/update", { body: { run_id: runId, status: recorded, end_time: endTime } });
    const info = toRunInfo((r.run_info as Json) ?? {});
    if (recorded !== status) {
      throw new TrackingUnavailableError(`run ${runId} lost writes while ${this.uri} was unavailable, so it was ended as FAILED instead of FINISHED`);
    }
    return info;
  }

  async logParams(runId: string, params: Record<string, ParamValue>): Promise<void> {
    validateRunId(runId);
    const entries = validateParams(params);
    if (entries.length === 0) return;
    // Refuse a changed value before sending anything, so a multi-request batch is all or nothing.
    const current = (await this.getRun(runId)).params;
    for (const [k, v] of entries) {
      if (current[k] !== undefined && current[k] !== v) {
        throw new BadParameterError(`param ${JSON.stringify(k)}`, `run ${runId} already logged it as ${JSON.stringify(current[k])}; params are immutable in MLflow, so ${JSON.stringify(v)} is refused`);
      }
    }
    await this.write(runId, async () => {
      for (const part of chunks(entries, LIMITS.paramsPerBatch)) {
        await this.request("POST", "/api/2.0/mlflow/runs/log-batch", { body: { run_id: runId, params: part.map(([key, value]) => ({ key, value })) } });
      }
    });
  }

  async logMetrics(runId: string, metrics: readonly MetricInput[]): Promise<void> {
    validateRunId(runId);
    const valid = validateMetrics(metrics);
    await this.write(runId, async () => {
      for (const part of chunks(valid, LIMITS.metricsPerBatch)) {
        await this.request("POST", "/api/2.0/mlflow/runs/log-batch", { body: { run_id: runId, metrics: part } });
      }
    });
  }

  async setTags(runId: string, tags: Record<string, string>): Promise<void> {
    validateRunId(runId);
    const entries = validateTags(tags);
    await this.write(runId, async () => {
      // set-tag for the run name, which the server mirrors into the run's name attribute.
      for (const [key, value] of entries.filter(([k]) => k === RUN_NAME_TAG)) {
        await this.request("POST", "/api/2.0/mlflow/runs/set-tag", { body: { run_id: runId, key, value } });
      }
      for (const part of chunks(entries.filter(([k]) => k !== RUN_NAME_TAG), LIMITS.tagsPerBatch)) {
        await this.request("POST", "/api/2.0/mlflow/runs/log-batch", { body: { run_id: runId, tags: part.map(([key, value]) => ({ key, value })) } });
      }
    });
  }

  /** The run's artifact root as a path of the server's mlflow-artifacts API. */
  private async artifactBase(runId: string): Promise<string> {
    const uri = this.artifactUris.get(runId) ?? (await this.getRun(runId)).info.artifactUri;
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(uri);
    if (!m) {
      throw new BadParameterError(
        "artifacts",
        `run ${runId} stores artifacts at ${uri}; only servers that proxy artifacts (mlflow server --serve-artifacts, the default) are supported for upload`,
      );
    }
    return m[1].replace(/\/+$/, "");
  }

  async logArtifacts(runId: string, localPath: string, artifactPath?: string): Promise<void> {
    validateRunId(runId);
    const sub = validateArtifactPath(artifactPath);
    const stat = await fs.stat(localPath).catch(() => undefined);
    if (!stat) throw new BadParameterError("artifact", `${localPath} does not exist`);
    const base = await this.artifactBase(runId);
    const files: Array<[string, string]> = stat.isDirectory()
      ? (await walk(localPath)).map((rel) => [path.join(localPath, ...rel.split("/")), rel])
      : [[localPath, path.basename(localPath)]];
    await this.write(runId, async () => {
      for (const [abs, rel] of files) {
        const target = [base, sub, rel].filter(Boolean).join("/");
        const encoded = target.split("/").map(encodeURIComponent).join("/");
        await this.request("PUT", `/api/2.0/mlflow-artifacts/artifacts/${encoded}`, { raw: await fs.readFile(abs) });
      }
    });
  }

  async listArtifacts(runId: string): Promise<ArtifactEntry[]> {
    validateRunId(runId);
    const out: ArtifactEntry[] = [];
    const visit = async (dir: string): Promise<void> => {
      let pageToken: string | undefined;
      do {
        const r = await this.request("GET", "/api/2.0/mlflow/artifacts/list", { query: { run_id: runId, ...(dir ? { path: dir } : {}), ...(pageToken ? { page_token: pageToken } : {}) } });
        for (const f of (r.files as Json[] | undefined) ?? []) {
          const p = String(f.path);
          if (f.is_dir) await visit(p);
          else out.push({ path: p, isDir: false, fileSize: optNumber(f.file_size) ?? undefined });
        }
        pageToken = (r.next_page_token as string | undefined) || undefined;
      } while (pageToken);
    };
    await visit("");
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  async getRun(runId: string): Promise<Run> {
    validateRunId(runId);
    const r = await this.request("GET", "/api/2.0/mlflow/runs/get", { query: { run_id: runId } });
    return toRun(r.run as Json);
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    validateRunId(runId);
    validateKey("metric", key);
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.request("GET", "/api/2.0/mlflow/metrics/get-history", {
        query: { run_id: runId, metric_key: key, max_results: "25000", ...(pageToken ? { page_token: pageToken } : {}) },
      });
      for (const m of (r.metrics as Json[] | undefined) ?? []) out.push(toMetric(m));
      pageToken = (r.next_page_token as string | undefined) || undefined;
    } while (pageToken);
    return out;
  }

  async searchRuns(options: SearchRunsOptions): Promise<RunsPage> {
    const max = validateMaxResults(options.maxResults);
    options.experimentIds.forEach(validateExperimentId);
    const r = await this.request("POST", "/api/2.0/mlflow/runs/search", {
      body: {
        experiment_ids: options.experimentIds,
        filter: buildFilter(options),
        run_view_type: "ACTIVE_ONLY",
        max_results: max,
        order_by: ["attributes.start_time DESC"],
        ...(options.pageToken ? { page_token: options.pageToken } : {}),
      },
    });
    const runs = ((r.runs as Json[] | undefined) ?? []).map(toRun);
    const next = (r.next_page_token as string | undefined) || undefined;
    return next ? { runs, nextPageToken: next } : { runs };
  }
}

function quote(value: string, what: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new BadParameterError(what, "a search value cannot contain both ' and \" (MLflow's filter syntax has no escape for that)");
}

/** MLflow's search filter syntax for our equality filters. */
export function buildFilter(options: SearchRunsOptions): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(options.tags ?? {})) parts.push(`tags.\`${validateKey("tag", k)}\` = ${quote(v, `tag ${k}`)}`);
  for (const [k, v] of Object.entries(options.params ?? {})) parts.push(`params.\`${validateKey("param", k)}\` = ${quote(v, `param ${k}`)}`);
  if (options.status !== undefined) parts.push(`attributes.status = '${validateStatus(options.status)}'`);
  return parts.join(" AND ");
}

async function walk(root: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(root, rel)));
    else out.push(rel);
  }
  return out;
}

function toExperiment(e: Json): Experiment {
  return {
    experimentId: String(e.experiment_id),
    name: String(e.name ?? ""),
    artifactLocation: String(e.artifact_location ?? ""),
    lifecycleStage: e.lifecycle_stage === "deleted" ? "deleted" : "active",
    creationTime: optNumber(e.creation_time),
    lastUpdateTime: optNumber(e.last_update_time),
  };
}

function toRunInfo(i: Json): RunInfo {
  return {
    runId: String(i.run_id ?? i.run_uuid ?? ""),
    runName: String(i.run_name ?? ""),
    experimentId: String(i.experiment_id ?? ""),
    userId: String(i.user_id ?? ""),
    status: (i.status as RunStatus | undefined) ?? "RUNNING",
    startTime: decodeNumber(i.start_time),
    endTime: optNumber(i.end_time),
    artifactUri: String(i.artifact_uri ?? ""),
    lifecycleStage: i.lifecycle_stage === "deleted" ? "deleted" : "active",
  };
}

function toMetric(m: Json): Metric {
  return { key: String(m.key), value: decodeNumber(m.value), timestamp: decodeNumber(m.timestamp), step: decodeNumber(m.step ?? 0) };
}

function toRun(run: Json): Run {
  const data = (run.data as Json | undefined) ?? {};
  const kv = (list: unknown) => Object.fromEntries(((list as Json[] | undefined) ?? []).map((p) => [String(p.key), String(p.value ?? "")]));
  const metrics: Record<string, Metric> = {};
  for (const m of (data.metrics as Json[] | undefined) ?? []) metrics[String(m.key)] = toMetric(m);
  return { info: toRunInfo(run.info as Json), params: kv(data.params), metrics, tags: kv(data.tags) };
}
