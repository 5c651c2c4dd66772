/**
 * Input checks, mirroring what MLflow itself accepts, so that a run logged here can always be read
 * (and re-logged) by MLflow, and a key can never escape its directory in the file store. Applied
 * once, by `ValidatingTracker`, for both stores. Every failure is a BadParameterError naming the
 * offending key.
 */
import { BadParameterError } from "@ms/contracts";
import { RUN_STATUSES, type MetricInput, type ParamValue, type RunStatus, type TerminalStatus } from "./types.js";

/** MLflow's limits (mlflow/utils/validation.py). */
export const LIMITS = {
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  experimentNameLength: 500,
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
} as const;

/**
 * MLflow allows `[/\w.\- ]` (plus `:` except on Windows). We leave out `:` so that a store written
 * here stays readable on every platform MLflow runs on.
 */
const KEY_CHARS = /^[\p{L}\p{N}_\-. /]+$/u;
const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;
const EXPERIMENT_ID = /^[a-zA-Z0-9][\w-]{0,63}$/;

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** A key is also a relative file path in the file store: it must not resolve to another name. */
function pathProblem(key: string): string | undefined {
  if (key.startsWith("/")) return "must not start with '/'";
  if (key.startsWith("..")) return "must not start with '..'";
  for (const segment of key.split("/")) {
    if (segment === "") return "must not contain empty path segments ('//' or a trailing '/')";
    if (segment === "." || segment === "..") return `must not contain a '${segment}' path segment`;
  }
  return undefined;
}

export function validateKey(kind: "param" | "metric" | "tag", key: unknown): string {
  const label = `${kind} key ${JSON.stringify(key)}`;
  if (typeof key !== "string" || key.length === 0) throw new BadParameterError(label, "must be a non-empty string");
  if (codePoints(key) > LIMITS.keyLength)
    throw new BadParameterError(label, `is longer than MLflow's limit of ${LIMITS.keyLength} characters`);
  if (!KEY_CHARS.test(key)) {
    throw new BadParameterError(
      label,
      "may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ) and slashes (/)",
    );
  }
  const problem = pathProblem(key);
  if (problem) throw new BadParameterError(label, problem);
  return key;
}

export function validateParamValue(key: string, value: unknown): string {
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
    throw new BadParameterError(
      `param ${JSON.stringify(key)}`,
      `value must be a string, number or boolean, got ${value === null ? "null" : typeof value}`,
    );
  }
  const text = String(value);
  if (codePoints(text) > LIMITS.paramValueLength) {
    throw new BadParameterError(
      `param ${JSON.stringify(key)}`,
      `value is ${codePoints(text)} characters, over MLflow's limit of ${LIMITS.paramValueLength}`,
    );
  }
  return text;
}

export function validateTagValue(key: string, value: unknown): string {
  if (typeof value !== "string")
    throw new BadParameterError(`tag ${JSON.stringify(key)}`, `value must be a string, got ${value === null ? "null" : typeof value}`);
  if (codePoints(value) > LIMITS.tagValueLength) {
    throw new BadParameterError(
      `tag ${JSON.stringify(key)}`,
      `value is ${codePoints(value)} characters, over MLflow's limit of ${LIMITS.tagValueLength}`,
    );
  }
  return value;
}

export function validateParams(params: Record<string, ParamValue>): Array<[string, string]> {
  if (params === null || typeof params !== "object") throw new BadParameterError("params", "must be an object of key -> value");
  return Object.entries(params).map(([k, v]) => [validateKey("param", k), validateParamValue(k, v)]);
}

export function validateTags(tags: Record<string, string>): Array<[string, string]> {
  if (tags === null || typeof tags !== "object") throw new BadParameterError("tags", "must be an object of key -> value");
  return Object.entries(tags).map(([k, v]) => [validateKey("tag", k), validateTagValue(k, v)]);
}

export interface ValidMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export function validateMetrics(metrics: readonly MetricInput[], now = Date.now()): ValidMetric[] {
  if (!Array.isArray(metrics)) throw new BadParameterError("metrics", "must be an array of { key, value, step?, timestamp? }");
  return metrics.map((m) => {
    const key = validateKey("metric", m?.key);
    const label = `metric ${JSON.stringify(key)}`;
    if (typeof m.value !== "number")
      throw new BadParameterError(label, `value must be a number (NaN and Infinity are allowed), got ${typeof m.value}`);
    const step = m.step ?? 0;
    const timestamp = m.timestamp ?? now;
    if (!Number.isSafeInteger(step)) throw new BadParameterError(label, `step must be an integer, got ${step}`);
    if (!Number.isSafeInteger(timestamp) || timestamp < 0)
      throw new BadParameterError(label, `timestamp must be a non-negative integer (ms), got ${timestamp}`);
    return { key, value: m.value, timestamp, step };
  });
}

/** Milliseconds since the epoch, as MLflow stores start, end and metric times. */
export function validateTime(label: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    throw new BadParameterError(label, `must be a non-negative integer (ms since the epoch), got ${String(value)}`);
  return value;
}

export function validateRunId(runId: unknown): string {
  if (typeof runId !== "string" || !RUN_ID.test(runId))
    throw new BadParameterError("run id", `${JSON.stringify(runId)} is not a valid MLflow run id`);
  return runId;
}

export function validateExperimentId(id: unknown): string {
  if (typeof id !== "string" || !EXPERIMENT_ID.test(id))
    throw new BadParameterError("experiment id", `${JSON.stringify(id)} is not a valid MLflow experiment id`);
  return id;
}

export function validateExperimentName(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "") throw new BadParameterError("experiment name", "must be a non-empty string");
  if (codePoints(name) > LIMITS.experimentNameLength)
    throw new BadParameterError("experiment name", `is longer than MLflow's limit of ${LIMITS.experimentNameLength} characters`);
  return name;
}

export function validateStatus(status: unknown, terminal: true): TerminalStatus;
export function validateStatus(status: unknown, terminal?: false): RunStatus;
export function validateStatus(status: unknown, terminal = false): RunStatus {
  const allowed: readonly string[] = terminal ? ["FINISHED", "FAILED", "KILLED"] : RUN_STATUSES;
  if (typeof status !== "string" || !allowed.includes(status)) {
    throw new BadParameterError("status", `${JSON.stringify(status)} is not one of ${allowed.join(", ")}`);
  }
  return status as RunStatus;
}

/** An artifact sub-path: relative, `/`-separated, never leaving the run's artifact directory. */
export function validateArtifactPath(path: string | undefined): string {
  if (path === undefined || path === "") return "";
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed.includes("\\") || trimmed.includes("\0"))
    throw new BadParameterError("artifact path", `${JSON.stringify(path)} must use '/' separators only`);
  const problem = trimmed === "" ? "must be relative" : pathProblem(trimmed);
  if (problem) throw new BadParameterError("artifact path", `${JSON.stringify(path)} ${problem}`);
  return trimmed;
}

export function validateMaxResults(n: number | undefined): number {
  const value = n ?? 100;
  if (!Number.isInteger(value) || value < 1 || value > 1000)
    throw new BadParameterError("maxResults", `must be an integer in 1..1000, got ${value}`);
  return value;
}
