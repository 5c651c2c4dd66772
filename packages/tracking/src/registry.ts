/**
 * MLflow's model registry over the REST API of a tracking server: registered models, model
 * versions and aliases (`registered-models/*`, `model-versions/*`). A file store has no registry
 * (MLflow's neither), so `openRegistry` refuses one with `TrackingUnavailableError` (exit 7) before
 * any request. Sending, retries, auth and the checking of answers are the transport's
 * (rest-transport.ts); the answers' shapes are checked by the schemas below.
 */
import {
  BadParameterError,
  createLogger,
  InterruptedError,
  MissingArtifactError,
  TrackingUnavailableError,
  type Logger,
} from "@ms/contracts";
import * as v from "valibot";
import { MlflowParameterError, RestTransport } from "./rest-transport.js";
import { restOptions, resolveTrackingUri, type TrackerOptions } from "./tracker.js";

const API = "/api/2.0/mlflow";

/** A model version's registration state, as MLflow names it. */
export const MODEL_VERSION_STATUSES = ["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"] as const;
export type ModelVersionStatus = (typeof MODEL_VERSION_STATUSES)[number];

export interface ModelVersion {
  name: string;
  /** A positive integer, as MLflow numbers versions. */
  version: number;
  status: ModelVersionStatus;
  statusMessage: string;
  /** Where the model's files are (e.g. `mlflow-artifacts:/1/<run>/artifacts/model`). */
  source: string;
  /** The run that produced it; "" when the version was registered without one. */
  runId: string;
  /** MLflow 3's LoggedModel id; "" when the version has none. */
  modelId: string;
  aliases: string[];
  creationTimestamp: number | null;
}

export interface RegisteredModel {
  name: string;
  /** alias -> version */
  aliases: Record<string, number>;
  creationTimestamp: number | null;
}

const Int = v.pipe(v.union([v.number(), v.pipe(v.string(), v.regex(/^\d+$/, "expected an integer"))]), v.transform(Number));
const OptInt = v.pipe(
  v.optional(v.union([Int, v.null()]), null),
  v.transform((x) => x ?? null),
);

const ModelVersionSchema = v.pipe(
  v.object({
    name: v.string(),
    version: Int,
    status: v.optional(v.picklist(MODEL_VERSION_STATUSES), "READY"),
    status_message: v.optional(v.string(), ""),
    source: v.optional(v.string(), ""),
    run_id: v.optional(v.string(), ""),
    model_id: v.optional(v.string(), ""),
    aliases: v.optional(v.array(v.string()), []),
    creation_timestamp: OptInt,
  }),
  v.transform(
    (m): ModelVersion => ({
      name: m.name,
      version: m.version,
      status: m.status,
      statusMessage: m.status_message,
      source: m.source,
      runId: m.run_id,
      modelId: m.model_id,
      aliases: m.aliases,
      creationTimestamp: m.creation_timestamp,
    }),
  ),
);

const RegisteredModelSchema = v.pipe(
  v.object({
    name: v.string(),
    aliases: v.optional(v.array(v.object({ alias: v.string(), version: Int })), []),
    creation_timestamp: OptInt,
  }),
  v.transform(
    (r): RegisteredModel => ({
      name: r.name,
      aliases: Object.fromEntries(r.aliases.map((a) => [a.alias, a.version])),
      creationTimestamp: r.creation_timestamp,
    }),
  ),
);

const Answers = {
  registeredModel: v.object({ registered_model: RegisteredModelSchema }),
  modelVersion: v.object({ model_version: ModelVersionSchema }),
  empty: v.object({}),
};

/** MLflow's rules for a registered model name (mlflow/utils/validation.py): a `models:/` URI can carry it. */
export function validateModelName(name: string, flag = "--register-model"): string {
  if (name.trim() === "") throw new BadParameterError(flag, "a registered model name cannot be empty");
  if (name.length > 256) throw new BadParameterError(flag, `a registered model name has at most 256 characters, got ${name.length}`);
  // As MLflow: `/` separates the name from a version in a `models:/` URI (the last `@` separates an alias, so `@` is allowed).
  if (/[/:]/.test(name)) throw new BadParameterError(flag, `${JSON.stringify(name)}: a registered model name cannot contain '/' or ':'`);
  return name;
}

/** MLflow's rules for an alias: word characters and '-', at most 255, not `latest` nor `v<digits>` (reserved). */
export function validateAlias(alias: string, flag = "--alias"): string {
  if (!/^[\w-]{1,255}$/.test(alias))
    throw new BadParameterError(flag, `${JSON.stringify(alias)}: an alias is 1-255 letters, digits, '_' or '-'`);
  if (alias.toLowerCase() === "latest" || /^v\d+$/i.test(alias))
    throw new BadParameterError(flag, `${JSON.stringify(alias)} is reserved by MLflow (latest, v<number> name versions)`);
  return alias;
}

export interface WaitOptions {
  /** How long to wait for PENDING_REGISTRATION to end (default 300 s, as MLflow's client). */
  timeoutMs?: number;
  /** The first poll interval; doubles up to 5 s (default 250 ms). */
  intervalMs?: number;
  signal?: AbortSignal;
}

/** The model registry of one MLflow tracking server. */
export class ModelRegistry {
  constructor(private readonly http: RestTransport) {}

  /** The server's URI, credentials removed. */
  get uri(): string {
    return this.http.uri;
  }

  /** The registered model, or undefined when there is none of that name. */
  async getRegisteredModel(name: string): Promise<RegisteredModel | undefined> {
    try {
      return (await this.http.request("GET", `${API}/registered-models/get`, Answers.registeredModel, { query: { name } }))
        .registered_model;
    } catch (error) {
      if (error instanceof MissingArtifactError) return undefined;
      throw error;
    }
  }

  /** The registered model `name`, created when missing (another process creating it at the same time is fine). */
  async ensureRegisteredModel(name: string, description?: string): Promise<RegisteredModel> {
    const existing = await this.getRegisteredModel(name);
    if (existing) return existing;
    try {
      const body = { name, ...(description ? { description } : {}) };
      return (await this.http.request("POST", `${API}/registered-models/create`, Answers.registeredModel, { body })).registered_model;
    } catch (error) {
      if (error instanceof MlflowParameterError && error.mlflowErrorCode === "RESOURCE_ALREADY_EXISTS") {
        const again = await this.getRegisteredModel(name);
        if (again) return again;
      }
      throw error;
    }
  }

  /** A new version of `name` from the model files at `source`, produced by run `runId`. */
  async createModelVersion(o: {
    name: string;
    source: string;
    runId: string;
    /** MLflow 3's LoggedModel the version is of, where the run logged one. */
    modelId?: string;
    description?: string;
    tags?: Record<string, string>;
  }): Promise<ModelVersion> {
    const body = {
      name: o.name,
      source: o.source,
      run_id: o.runId,
      ...(o.modelId ? { model_id: o.modelId } : {}),
      ...(o.description ? { description: o.description } : {}),
      tags: Object.entries(o.tags ?? {}).map(([key, value]) => ({ key, value })),
    };
    return (await this.http.request("POST", `${API}/model-versions/create`, Answers.modelVersion, { body })).model_version;
  }

  /** A version; undefined when the model or the version does not exist. */
  async getModelVersion(name: string, version: number): Promise<ModelVersion | undefined> {
    try {
      const query = { name, version: String(version) };
      return (await this.http.request("GET", `${API}/model-versions/get`, Answers.modelVersion, { query })).model_version;
    } catch (error) {
      if (error instanceof MissingArtifactError) return undefined;
      throw error;
    }
  }

  /**
   * The version an alias points to; undefined when the model or the alias does not exist (MLflow
   * answers 404 for both; `getRegisteredModel` tells them apart).
   */
  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion | undefined> {
    try {
      const query = { name, alias };
      return (await this.http.request("GET", `${API}/registered-models/alias`, Answers.modelVersion, { query })).model_version;
    } catch (error) {
      if (error instanceof MissingArtifactError) return undefined;
      if (error instanceof MlflowParameterError && error.mlflowErrorCode === "INVALID_PARAMETER_VALUE") return undefined;
      throw error;
    }
  }

  /** Points `alias` at `version` (moving it from the version it pointed to before). */
  async setAlias(name: string, alias: string, version: number): Promise<void> {
    await this.http.request("POST", `${API}/registered-models/alias`, Answers.empty, { body: { name, alias, version: String(version) } });
  }

  /**
   * Polls a version until it leaves PENDING_REGISTRATION: READY resolves, FAILED_REGISTRATION and
   * the timeout throw (TrackingUnavailableError, naming the version and its status message).
   */
  async waitUntilReady(name: string, version: ModelVersion, o: WaitOptions = {}): Promise<ModelVersion> {
    const timeoutMs = o.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    let current = version;
    let interval = o.intervalMs ?? 250;
    for (;;) {
      if (current.status === "READY") return current;
      if (current.status === "FAILED_REGISTRATION")
        throw new TrackingUnavailableError(
          `${this.uri}: registering version ${current.version} of model ${name} failed: ${current.statusMessage || "no reason given"}`,
        );
      if (Date.now() + interval > deadline)
        throw new TrackingUnavailableError(
          `${this.uri}: version ${current.version} of model ${name} is still ${current.status} after ${Math.round(timeoutMs / 1000)} s`,
        );
      await sleep(interval, o.signal);
      interval = Math.min(interval * 2, 5_000);
      const again = await this.getModelVersion(name, current.version);
      if (!again) throw new MissingArtifactError(`${this.uri}: version ${current.version} of model ${name} disappeared while registering`);
      current = again;
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new InterruptedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new InterruptedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The registry of the tracking server a tracking URI names. A file store (a path, `file:`, the
 * default `./mlruns`) has none: `TrackingUnavailableError` (exit 7) saying what to give instead.
 * Nothing is requested until a method is called.
 */
export function openRegistry(uri: string | undefined, options: TrackerOptions = {}): ModelRegistry {
  const target = resolveTrackingUri(uri, options);
  if (target.kind === "file")
    throw new TrackingUnavailableError(
      `the tracking store ${target.root} is a file store, which has no model registry; give --tracking-uri http(s)://HOST:PORT of an MLflow server (mlflow server) to register models or resolve models:/ URIs`,
    );
  let logger: Logger | undefined = options.logger;
  const lazy = () => (logger ??= createLogger({ name: "ms-tracking" }));
  return new ModelRegistry(new RestTransport(target.url, restOptions(options, lazy)));
}
