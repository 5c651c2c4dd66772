/**
 * The transport under the remote store: one function through which every request to an MLflow
 * server goes. It adds auth (bearer token or basic), retries connection errors, timeouts, 429 and
 * 5xx with exponential backoff and jitter, checks each answer against the valibot schema the caller
 * gives, and turns failures into the project's error classes with secrets scrubbed out. Retries
 * draw on one budget per transport (that is, per run of the driver), not per call: a dead server
 * costs the run one budget, after which every call fails at once. Failures that waiting cannot fix
 * (an unknown host, TLS, a 4xx, a 200 whose body is empty, cut off or not the expected shape)
 * fail at once; retries are logged from the first.
 */
import {
  BadParameterError,
  checkJson,
  MissingArtifactError,
  type MsError,
  NetworkError,
  silentLogger,
  TrackingUnavailableError,
} from "@ms/contracts";
import * as v from "valibot";
import type { LazyLogger } from "./store.js";

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

export interface RestTransportOptions {
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

/** What fetch throws: an Error whose `cause` (undici's) carries the errno-like code. */
const FetchCause = v.object({ code: v.optional(v.string()), message: v.optional(v.string()) });

function transportFailure(error: unknown): TransportFailure {
  const e = error instanceof Error ? error : new Error(String(error));
  if (e.name === "TimeoutError") return { problem: "request timed out", permanent: false, refused: false, badPort: false };
  const parsed = v.safeParse(FetchCause, e.cause);
  const cause = parsed.success ? parsed.output : {};
  const code = cause.code ?? e.name;
  const badPort = cause.message === "bad port";
  return {
    problem: `${code}: ${cause.message ?? e.message}`,
    permanent: badPort || PERMANENT_CODES.has(code),
    refused: REFUSED_CODES.has(code),
    badPort,
  };
}

function encodeNumber(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "Infinity";
  if (v === Number.NEGATIVE_INFINITY) return "-Infinity";
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** MLflow's error answer; anything else in a failed answer is shown as text. */
const ApiErrorSchema = v.object({ error_code: v.optional(v.string()), message: v.optional(v.string()) });

/** A `BadParameterError` that remembers MLflow's error code (e.g. RESOURCE_ALREADY_EXISTS). */
export class MlflowParameterError extends BadParameterError {
  constructor(
    message: string,
    readonly mlflowErrorCode: string | undefined,
  ) {
    super("mlflow", message);
  }
}

export interface RequestOptions {
  query?: Record<string, string>;
  body?: unknown;
  raw?: Uint8Array;
}

/** The outcome of one attempt that did not return: why, and whether nothing was listening. */
interface FailedAttempt {
  problem: string;
  refused: boolean;
}

export class RestTransport {
  readonly uri: string;
  private readonly base: URL;
  private readonly authHeader: string | undefined;
  private readonly secrets: string[];
  private readonly retry: Required<RetryOptions>;
  private readonly log: LazyLogger;
  /** Milliseconds of the retry budget used so far: failed attempts plus backoff waits. */
  private spentMs = 0;
  /** Set once the budget is spent: the last problem seen. */
  private exhausted: string | undefined;
  /** Whether the server has answered (any HTTP status) at least once. */
  private reached = false;

  constructor(baseUrl: string, options: RestTransportOptions = {}) {
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
    const secrets: string[] = [];
    if (auth.token) {
      this.authHeader = `Bearer ${auth.token}`;
      secrets.push(auth.token);
    } else if (auth.username !== undefined && auth.password !== undefined) {
      const b64 = Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
      this.authHeader = `Basic ${b64}`;
      secrets.push(b64, auth.password);
    }
    this.secrets = secrets.filter((s) => s.length >= 3);
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

  /**
   * Sends one API call, retrying within the budget, and returns its answer checked against
   * `schema`. `schema` undefined: the call's answer may be empty (the artifact upload) and is ignored.
   */
  async request<S extends v.GenericSchema>(
    method: "GET" | "POST" | "PUT" | "PATCH",
    apiPath: string,
    schema: S,
    opts?: RequestOptions,
  ): Promise<v.InferOutput<S>>;
  async request(method: "GET" | "POST" | "PUT" | "PATCH", apiPath: string, schema: undefined, opts?: RequestOptions): Promise<void>;
  async request<S extends v.GenericSchema>(
    method: "GET" | "POST" | "PUT" | "PATCH",
    apiPath: string,
    schema: S | undefined,
    opts: RequestOptions = {},
  ): Promise<v.InferOutput<S> | undefined> {
    const url = new URL(this.base.href.replace(/\/$/, "") + apiPath);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const init = this.requestInit(method, opts);
    const what = `${method} ${url.pathname}`;
    if (this.exhausted !== undefined) {
      throw new TrackingUnavailableError(
        `MLflow server ${this.uri} unavailable: ${what} not sent, the retry budget for this run is spent (last: ${this.exhausted})`,
      );
    }
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      const outcome = await this.attempt(url, init, what, schema);
      if (!("problem" in outcome)) return outcome.value;
      this.spentMs += Date.now() - t0;
      await this.backOff(attempt, outcome, what);
    }
  }

  private requestInit(
    method: string,
    opts: RequestOptions,
  ): { method: string; headers: Record<string, string>; body: string | Uint8Array | undefined } {
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
    return { method, headers, body };
  }

  /** One attempt: the answer, or why it failed in a way worth retrying. Other failures throw. */
  private async attempt<S extends v.GenericSchema>(
    url: URL,
    init: { method: string; headers: Record<string, string>; body: string | Uint8Array | undefined },
    what: string,
    schema: S | undefined,
  ): Promise<{ value: v.InferOutput<S> | undefined } | FailedAttempt> {
    let response: Response;
    try {
      const remaining = this.retry.maxTotalMs - this.spentMs;
      response = await fetch(url, {
        ...init,
        signal: AbortSignal.timeout(Math.max(1, Math.floor(Math.min(this.retry.requestTimeoutMs, remaining)))),
      });
    } catch (error) {
      const f = transportFailure(error);
      const problem = this.redact(f.problem);
      if (f.badPort)
        throw new BadParameterError(
          "--tracking-uri",
          `${this.uri}: port ${url.port} is one that fetch refuses to connect to; use another port`,
        );
      if (f.permanent)
        throw new TrackingUnavailableError(
          `MLflow server ${this.uri} unavailable: ${what} failed: ${problem} (not retried: waiting cannot fix it)`,
        );
      return { problem, refused: f.refused };
    }
    this.reached = true;
    let text: string | undefined;
    let cut = "";
    try {
      text = await response.text();
    } catch (error) {
      cut = transportFailure(error).problem;
    }
    if (response.ok) {
      // The artifact upload is the one endpoint MLflow answers with an empty 200.
      if (schema === undefined && text !== undefined && text.trim() === "") return { value: undefined };
      if (schema === undefined) {
        this.parseOk(response.status, text, cut, what, v.object({}));
        return { value: undefined };
      }
      return { value: this.parseOk(response.status, text, cut, what, schema) };
    }
    if (!(response.status === 429 || response.status >= 500)) throw this.apiError(response.status, text ?? "", what);
    return { problem: `HTTP ${response.status} ${this.redact((text ?? "").slice(0, 200)).trim()}`.trim(), refused: false };
  }

  /** Waits before the next attempt, or gives up (and spends the budget for good) when it is used up. */
  private async backOff(attempt: number, failed: FailedAttempt, what: string): Promise<void> {
    const { problem, refused } = failed;
    // Nothing has ever answered and the connection is refused: most likely a wrong address, not an outage.
    const limit = refused && !this.reached ? Math.min(this.retry.unreachedMs, this.retry.maxTotalMs) : this.retry.maxTotalMs;
    const delay = Math.round(Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
    if (this.spentMs + delay >= limit) {
      this.exhausted = problem;
      const hint = this.reached
        ? ""
        : "; nothing has answered at this address yet: check the host and port, and that the server is running";
      throw new TrackingUnavailableError(
        `MLflow server ${this.uri} unavailable: ${what} failed ${attempt} time(s); the retry budget of ${seconds(limit)} for this run is spent (last: ${problem})${hint}`,
      );
    }
    const fields = { trackingUri: this.uri, endpoint: what, error: problem, attempt, budgetLeftMs: Math.round(limit - this.spentMs) };
    if (attempt === 1)
      this.log().warn(
        fields,
        `tracking server ${this.uri} did not answer ${what} (${problem}); retrying for up to ${seconds(limit - this.spentMs)} more`,
      );
    else this.log().debug(fields, "tracking server retry");
    await sleep(delay);
    this.spentMs += delay;
  }

  /**
   * A 2xx answer of the REST API must carry a whole JSON object of the endpoint's shape: MLflow
   * always sends one, `{}` at least. Anything else names the endpoint and the field.
   */
  private parseOk<S extends v.GenericSchema>(
    status: number,
    text: string | undefined,
    cut: string,
    what: string,
    schema: S,
  ): v.InferOutput<S> {
    const hint = `is ${this.uri} an MLflow tracking server?`;
    const broken = (how: string) =>
      new TrackingUnavailableError(`MLflow server ${this.uri}: ${what} answered ${status} with ${how}; ${hint}`);
    if (text === undefined) throw broken(`a truncated body (${this.redact(cut)})`);
    if (text.trim() === "") throw broken("an empty body");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw broken(`a body that is not JSON, or truncated JSON: ${JSON.stringify(this.redact(text.slice(0, 200)))}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw broken(`JSON that is not an object: ${JSON.stringify(this.redact(text.slice(0, 200)))}`);
    const unexpected = (message: string, options: { cause?: unknown }) =>
      new TrackingUnavailableError(`${this.redact(message)}; ${hint}`, options);
    return checkJson(parsed, schema, `MLflow server ${this.uri}: ${what} answered`, { error: unexpected });
  }

  private apiError(status: number, text: string, what: string): MsError {
    let parsed: v.InferOutput<typeof ApiErrorSchema>;
    try {
      const body = v.safeParse(ApiErrorSchema, JSON.parse(text));
      parsed = body.success ? body.output : { message: text.slice(0, 300) };
    } catch {
      parsed = { message: text.slice(0, 300) };
    }
    const message = this.redact(`${this.uri}: ${what}: ${parsed.error_code ?? `HTTP ${status}`}: ${parsed.message ?? ""}`.trim());
    if (status === 401 || status === 403) {
      return new TrackingUnavailableError(`${message} (check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)`);
    }
    if (parsed.error_code === "RESOURCE_DOES_NOT_EXIST" || status === 404) return new MissingArtifactError(message);
    if (parsed.error_code === "INVALID_PARAMETER_VALUE" || parsed.error_code === "RESOURCE_ALREADY_EXISTS" || status === 400) {
      return new MlflowParameterError(message, parsed.error_code);
    }
    return new NetworkError(message);
  }
}
