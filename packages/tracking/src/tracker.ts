/**
 * Chooses a store from a tracking URI the way MLflow does: `http(s)://` is a tracking server,
 * a `file:` URI or a plain path is a local file store, and nothing at all means `./mlruns`
 * (or MLFLOW_TRACKING_URI when set).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BadParameterError } from "@ms/contracts";
import { FileStore } from "./file-store.js";
import { RestStore, type RestAuth, type RetryOptions } from "./rest-store.js";
import type { Tracker } from "./types.js";

export type TrackingTarget = { kind: "file"; root: string } | { kind: "rest"; url: string };

export interface TrackerOptions {
  /** Defaults to MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD. */
  auth?: RestAuth;
  /** Retry budget of the REST store; MS_TRACKING_RETRY_TIMEOUT_MS sets `maxTotalMs`. */
  retry?: RetryOptions;
  /** Environment to read defaults from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Base for relative paths (default `process.cwd()`). */
  cwd?: string;
}

export const DEFAULT_TRACKING_DIR = "mlruns";

/** Parses a tracking URI without touching the disk or the network. */
export function resolveTrackingUri(uri: string | undefined, options: Pick<TrackerOptions, "env" | "cwd"> = {}): TrackingTarget {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const raw = (uri ?? env.MLFLOW_TRACKING_URI ?? "").trim() || DEFAULT_TRACKING_DIR;
  if (/^https?:\/\//i.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new BadParameterError("--tracking-uri", "is not a valid http(s) URL");
    }
    return { kind: "rest", url: raw };
  }
  if (/^file:/i.test(raw)) {
    // `file:./mlruns` is relative (as MLflow accepts it); `file:///abs` is absolute.
    const rest = raw.slice(5);
    if (!rest.startsWith("//")) return { kind: "file", root: path.resolve(cwd, decodeURIComponent(rest)) };
    try {
      return { kind: "file", root: fileURLToPath(raw) };
    } catch (error) {
      throw new BadParameterError("--tracking-uri", `${raw} is not a local file URI (${(error as Error).message})`);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) || /^databricks/i.test(raw)) {
    throw new BadParameterError("--tracking-uri", `scheme of ${raw.split("://")[0]}:// is not supported; use a path, a file: URI or an http(s):// MLflow server`);
  }
  return { kind: "file", root: path.resolve(cwd, raw) };
}

/** Opens the store a tracking URI names. Nothing is created until the first call on it. */
export function createTracker(uri?: string, options: TrackerOptions = {}): Tracker {
  const env = options.env ?? process.env;
  const target = resolveTrackingUri(uri, options);
  if (target.kind === "file") return new FileStore(target.root);
  const auth: RestAuth = options.auth ?? {
    token: env.MLFLOW_TRACKING_TOKEN || undefined,
    username: env.MLFLOW_TRACKING_USERNAME || undefined,
    password: env.MLFLOW_TRACKING_PASSWORD || undefined,
  };
  const budget = env.MS_TRACKING_RETRY_TIMEOUT_MS;
  let retry = options.retry;
  if (!retry && budget !== undefined) {
    const ms = Number(budget);
    if (!Number.isFinite(ms) || ms < 0) throw new BadParameterError("MS_TRACKING_RETRY_TIMEOUT_MS", `"${budget}" is not a number of milliseconds`);
    retry = { maxTotalMs: ms };
  }
  return new RestStore(target.url, { auth, retry });
}
