/**
 * The remote store: MLflow's REST API 2.0 over Node's global fetch, plus the server's
 * `mlflow-artifacts` API for artifact upload (`mlflow server --serve-artifacts`, the default).
 *
 * Every request goes through one function that adds auth (bearer token or basic), retries
 * connection errors, timeouts, 429 and 5xx with exponential backoff and jitter, and turns
 * failures into the project's error classes with secrets scrubbed out. Retries draw on one budget
 * per store (that is, per run of the driver), not per call: a dead server costs the run one
 * budget, after which every call fails at once. Failures that waiting cannot fix (an unknown host,
 * TLS, a 4xx, a 200 whose body is empty or cut off) fail at once; retries are logged from the first.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { BadParameterError, MissingArtifactError, MsError, NetworkError, silentLogger, TrackingUnavailableError, walkFiles } from "@ms/contracts";
import type { ArtifactSource, Entries, LazyLogger, NewRun, RunQuery, Store } from "./store.js";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAGS } from "./tags.js";
import type { ArtifactEntry, Experiment, Metric, Run, RunInfo, RunsPage, RunStatus, TerminalStatus } from "./types.js";
import { LIMITS, type ValidMetric } from "./validation.js";

export interface RetryOptions {
  /**
   * The retry budget of the whole store, i.e. of one run (default 30 s): the time spent in failed
   * attempts and backoff waits, summed over every call. Once spent, every call fails at once.
   */
  maxTotalMs?: number;
  /**
   * While the server has not answered this store once, a refused connection (nothing listening:
   * a wrong port, a server not started) is retried only this long (default 5 s, at most `maxTotalMs`).
   */
  unreachedMs?: number;
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
  /** Where retry warnings go (default: nowhere). */
  logger?: LazyLogger;
}

export const DEFAULT_RETRY: Readonly<Required<RetryOptions>> = {
  maxTotalMs: 30_000,
  unreachedMs: 5_000,
  initialDelayMs: 250,
  maxDelayMs: 8_000,
  requestTimeoutMs: 30_000,
};

/** Failures of a connection that no amount of waiting fixes. */
const PERMANENT_CODES = new Set([
  "ENOTFOUND",
  "ERR_INVALID_URL",
  "EPROTO",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
/** Nothing is listening there (as opposed to a server that is slow or went away). */
const REFUSED_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"]);

interface TransportFailure {
  problem: string;
  permanent: boolean;
  refused: boolean;
  badPort: boolean;
}

function transportFailure(error: unknown): TransportFailure {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return { problem: "request timed out", permanent: false, refused: false, badPort: false };
  const code = e.cause?.code ?? e.name;
  const badPort = e.cause?.message === "bad port";
  return { problem: `${code}: ${e.cause?.message ?? e.message}`, permanent: badPort || PERMANENT_CODES.has(code), refused: REFUSED_CODES.has(code), badPort };
}

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

export class RestStore implements Store {
  readonly kind = "rest" as const;
  readonly uri: string;
  private readonly base: URL;
  private readonly authHeader: string | undefined;
  private readonly secrets: string[];
  private readonly retry: Required<RetryOptions>;
  private readonly artifactUris = new Map<string, string>();
  private readonly log: LazyLogger;
  /** Milliseconds of the retry budget used so far: failed attempts plus backoff waits. */
  private spentMs = 0;
  /** Set once the budget is spent: the last problem seen. */
  private exhausted: string | undefined;
  /** Whether the server has answered (any HTTP status) at least once. */
  private reached = false;

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
      maxTotalMs: r.maxTotalMs ?? DEFAULT_RETRY.maxTotalMs,
      unreachedMs: r.unreachedMs ?? DEFAULT_RETRY.unreachedMs,
      initialDelayMs: r.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs,
      maxDelayMs: r.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
      requestTimeoutMs: r.requestTimeoutMs ?? DEFAULT_RETRY.requestTimeoutMs,
    };
    this.log = options.logger ?? silentLogger;
  }

  /** Removes every secret we hold from a text before it reaches an error or a log. */
  private redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join("***");
    return out;
  }

  private async request(method: "GET" | "POST" | "PUT", apiPath: string, opts: { query?: Record<string, string>; body?: unknown; raw?: Uint8Array; emptyOk?: boolean } = {}): Promise<Json> {
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
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
    if (this.exhausted !== undefined) {
      throw new TrackingUnavailableError(
        `MLflow server ${this.uri} unavailable: ${what} not sent, the retry budget for this run is spent (last: ${this.exhausted})`,
      );
    }
    let attempt = 0;
    for (;;) {
      const t0 = Date.now();
      let problem = "";
      let refused = false;
      let response: Response | undefined;
      try {
        const remaining = this.retry.maxTotalMs - this.spentMs;
        response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(Math.max(1, Math.floor(Math.min(this.retry.requestTimeoutMs, remaining)))) });
      } catch (error) {
        const f = transportFailure(error);
        problem = this.redact(f.problem);
        if (f.badPort) throw new BadParameterError("--tracking-uri", `${this.uri}: port ${url.port} is one that fetch refuses to connect to; use another port`);
        if (f.permanent) throw new TrackingUnavailableError(`MLflow server ${this.uri} unavailable: ${what} failed: ${problem} (not retried: waiting cannot fix it)`);
        refused = f.refused;
      }
      if (response) {
        this.reached = true;
        let text: string | undefined;
        let cut = "";
        try {
          text = await response.text();
        } catch (error) {
          cut = transportFailure(error).problem;
        }
        if (response.ok) return opts.emptyOk && text !== undefined && text.trim() === "" ? {} : this.parseOk(response.status, text, cut, what);
        if (!(response.status === 429 || response.status >= 500)) throw this.apiError(response.status, text ?? "", what);
        problem = `HTTP ${response.status} ${this.redact((text ?? "").slice(0, 200)).trim()}`.trim();
      }
      this.spentMs += Date.now() - t0;
      attempt++;
      // Nothing has ever answered and the connection is refused: most likely a wrong address, not an outage.
      const limit = refused && !this.reached ? Math.min(this.retry.unreachedMs, this.retry.maxTotalMs) : this.retry.maxTotalMs;
      const delay = Math.round(Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
      if (this.spentMs + delay >= limit) {
        this.exhausted = problem;
        const hint = this.reached ? "" : "; nothing has answered at this address yet: check the host and port, and that the server is running";
        throw new TrackingUnavailableError(
          `MLflow server ${this.uri} unavailable: ${what} failed ${attempt} time(s); the retry budget of ${seconds(limit)} for this run is spent (last: ${problem})${hint}`,
        );
      }
      const fields = { trackingUri: this.uri, endpoint: what, error: problem, attempt, budgetLeftMs: Math.round(limit - this.spentMs) };
      if (attempt === 1) this.log().warn(fields, `tracking server ${this.uri} did not answer ${what} (${problem}); retrying for up to ${seconds(limit - this.spentMs)} more`);
      else this.log().debug(fields, "tracking server retry");
      await sleep(delay);
      this.spentMs += delay;
    }
  }

  /** A 2xx answer of the REST API must carry a whole JSON object: MLflow always sends one, `{}` at least. */
  private parseOk(status: number, text: string | undefined, cut: string, what: string): Json {
    const broken = (how: string) => new TrackingUnavailableError(`MLflow server ${this.uri}: ${what} answered ${status} with ${how}; is ${this.uri} an MLflow tracking server?`);
    if (text === undefined) throw broken(`a truncated body (${this.redact(cut)})`);
    if (text.trim() === "") throw broken("an empty body");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw broken(`a body that is not JSON, or truncated JSON: ${JSON.stringify(this.redact(text.slice(0, 200)))}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw broken(`JSON that is not an object: ${JSON.stringify(this.redact(text.slice(0, 200)))}`);
    return parsed as Json;
  }

  /** A field MLflow always sends in this answer. */
  private need(r: Json, key: string, what: string): Json {
    const v = r[key];
    if (v === null || typeof v !== "object") throw new TrackingUnavailableError(`MLflow server ${this.uri}: ${what} answered without "${key}"; is ${this.uri} an MLflow tracking server?`);
    return v as Json;
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

  // ---- experiments ----------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.request("GET", "/api/2.0/mlflow/experiments/get-by-name", { query: { experiment_name: name } });
      return toExperiment(this.need(r, "experiment", "experiments/get-by-name"));
    } catch (error) {
      if (error instanceof MissingArtifactError) return undefined;
      throw error;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const r = await this.request("GET", "/api/2.0/mlflow/experiments/get", { query: { experiment_id: experimentId } });
    return toExperiment(this.need(r, "experiment", "experiments/get"));
  }

  async createExperiment(name: string): Promise<Experiment> {
    const r = await this.request("POST", "/api/2.0/mlflow/experiments/create", { body: { name, tags: [{ key: EXPERIMENT_KIND_TAG, value: EXPERIMENT_KIND }] } });
    if (r.experiment_id === undefined || r.experiment_id === null || r.experiment_id === "") {
      throw new TrackingUnavailableError(`MLflow server ${this.uri}: experiments/create answered without "experiment_id"; is ${this.uri} an MLflow tracking server?`);
    }
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

  async startRun(run: NewRun): Promise<RunInfo> {
    if (run.parentRunId !== undefined) await this.getRun(run.parentRunId);
    if (run.tags.size > LIMITS.tagsPerBatch) throw new BadParameterError("tags", `at most ${LIMITS.tagsPerBatch - 3} tags can be given when a run starts; set the rest with setTags`);
    const r = await this.request("POST", "/api/2.0/mlflow/runs/create", {
      body: {
        experiment_id: run.experimentId,
        user_id: run.user,
        start_time: run.startTime,
        ...(run.runName !== undefined ? { run_name: run.runName } : {}),
        tags: [...run.tags].map(([key, value]) => ({ key, value })),
      },
    });
    const info = toRunInfo(this.need(this.need(r, "run", "runs/create"), "info", "runs/create"));
    this.artifactUris.set(info.runId, info.artifactUri);
    return info;
  }

  async endRun(runId: string, status: TerminalStatus, endTime: number): Promise<RunInfo> {
    const r = await this.request("POST", "/api/2.0/mlflow/runs/update", { body: { run_id: runId, status, end_time: endTime } });
    return toRunInfo(this.need(r, "run_info", "runs/update"));
  }

  async logParams(runId: string, entries: Entries): Promise<void> {
    // Refuse a changed value before sending anything, so a multi-request batch is all or nothing.
    const current = (await this.getRun(runId)).params;
    for (const [k, v] of entries) {
      if (current[k] !== undefined && current[k] !== v) {
        throw new BadParameterError(`param ${JSON.stringify(k)}`, `run ${runId} already logged it as ${JSON.stringify(current[k])}; params are immutable in MLflow, so ${JSON.stringify(v)} is refused`);
      }
    }
    for (const part of chunks(entries, LIMITS.paramsPerBatch)) {
      await this.request("POST", "/api/2.0/mlflow/runs/log-batch", { body: { run_id: runId, params: part.map(([key, value]) => ({ key, value })) } });
    }
  }

  async logMetrics(runId: string, metrics: readonly ValidMetric[]): Promise<void> {
    for (const part of chunks(metrics, LIMITS.metricsPerBatch)) {
      await this.request("POST", "/api/2.0/mlflow/runs/log-batch", { body: { run_id: runId, metrics: part } });
    }
  }

  async setTags(runId: string, entries: Entries): Promise<void> {
    // set-tag for the run name, which the server mirrors into the run's name attribute.
    for (const [key, value] of entries.filter(([k]) => k === TAGS.runName)) {
      await this.request("POST", "/api/2.0/mlflow/runs/set-tag", { body: { run_id: runId, key, value } });
    }
    for (const part of chunks(entries.filter(([k]) => k !== TAGS.runName), LIMITS.tagsPerBatch)) {
      await this.request("POST", "/api/2.0/mlflow/runs/log-batch", { body: { run_id: runId, tags: part.map(([key, value]) => ({ key, value })) } });
    }
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

  async logArtifacts(runId: string, source: ArtifactSource, sub: string): Promise<void> {
    const base = await this.artifactBase(runId);
    const files: Array<[string, string]> = source.isDirectory
      ? (await walkFiles(source.path)).map((rel) => [path.join(source.path, ...rel.split("/")), rel])
      : [[source.path, path.basename(source.path)]];
    for (const [abs, rel] of files) {
      const target = [base, sub, rel].filter(Boolean).join("/");
      const encoded = target.split("/").map(encodeURIComponent).join("/");
      // The artifact upload is the one endpoint MLflow answers with an empty 200.
      await this.request("PUT", `/api/2.0/mlflow-artifacts/artifacts/${encoded}`, { raw: await fs.readFile(abs), emptyOk: true });
    }
  }

  async listArtifacts(runId: string): Promise<ArtifactEntry[]> {
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
    const r = await this.request("GET", "/api/2.0/mlflow/runs/get", { query: { run_id: runId } });
    const run = this.need(r, "run", "runs/get");
    this.need(run, "info", "runs/get");
    return toRun(run);
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
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

  async searchRuns(query: RunQuery): Promise<RunsPage> {
    const r = await this.request("POST", "/api/2.0/mlflow/runs/search", {
      body: {
        experiment_ids: query.experimentIds,
        filter: buildFilter(query),
        run_view_type: "ACTIVE_ONLY",
        max_results: query.maxResults,
        order_by: ["attributes.start_time DESC"],
        ...(query.pageToken ? { page_token: query.pageToken } : {}),
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

/** MLflow's search filter syntax for our equality filters (keys are validated, so never hold a backtick). */
export function buildFilter(query: Pick<RunQuery, "tags" | "params" | "status">): string {
  const parts: string[] = [];
  for (const [k, v] of query.tags) parts.push(`tags.\`${k}\` = ${quote(v, `tag ${k}`)}`);
  for (const [k, v] of query.params) parts.push(`params.\`${k}\` = ${quote(v, `param ${k}`)}`);
  if (query.status !== undefined) parts.push(`attributes.status = '${query.status}'`);
  return parts.join(" AND ");
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
