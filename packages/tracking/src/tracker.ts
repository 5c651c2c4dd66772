/**
 * Chooses a store from a tracking URI the way MLflow does: `http(s)://` is a tracking server,
 * a `file:` URI or a plain path is a local file store, and nothing at all means `./mlruns`
 * (or MLFLOW_TRACKING_URI when set). The store is always handed out behind `ValidatingTracker`,
 * the one place input is checked.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BadParameterError, createLogger, type Logger } from "@ms/contracts";
import { FileStore } from "./file-store.js";
import { RestStore, type RestAuth, type RetryOptions } from "./rest-store.js";
import type { RestTransportOptions } from "./rest-transport.js";
import type { Store } from "./store.js";
import type { Tracker } from "./types.js";
import { ValidatingTracker } from "./validating-tracker.js";

export type TrackingTarget = { kind: "file"; root: string } | { kind: "rest"; url: string };

export interface TrackerOptions {
  /** Defaults to MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD. */
  auth?: RestAuth;
  /** Retry budget of the REST store, one for the tracker's life; MS_TRACKING_RETRY_TIMEOUT_MS sets `maxTotalMs`. */
  retry?: RetryOptions;
  /**
   * Where warnings go: retries of an unavailable server, runs that could not be ended, unreadable
   * runs skipped by a search. Default: a stderr logger at LOG_LEVEL, made on the first warning.
   */
  logger?: Logger;
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
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      // new URL refuses ports above 65535 too.
      throw new BadParameterError("--tracking-uri", "is not a valid http(s) URL (host, and a port in 1..65535)");
    }
    const problem = hostProblem(url);
    if (problem) throw new BadParameterError("--tracking-uri", problem);
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
    throw new BadParameterError(
      "--tracking-uri",
      `scheme of ${raw.split("://")[0]}:// is not supported; use a path, a file: URI or an http(s):// MLflow server (under \`mlflow run\`: MLFLOW_TRACKING_URI=./mlruns with MLFLOW_ALLOW_FILE_STORE=true, or a server's URL)`,
    );
  }
  return { kind: "file", root: path.resolve(cwd, raw) };
}

/** An address that no request can reach, found before any request is made. */
function hostProblem(url: URL): string | undefined {
  if (url.port === "0") return `port 0 in ${url.host} cannot be connected to; give the server's port (1..65535)`;
  const host = url.hostname;
  if (host === "") return "has no host";
  if (host.startsWith("[") || /^[\d.]+$/.test(host)) return undefined; // IPv6 or IPv4, already checked by URL
  // DNS names: labels of 1-63 letters, digits, '-' (not at either end) or '_', 253 characters at most.
  const labels = host.replace(/\.$/, "").split(".");
  if (host.length > 253 || labels.some((l) => !/^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i.test(l)))
    return `host ${JSON.stringify(host)} is not a valid host name`;
  return undefined;
}

/** Opens the store a tracking URI names. Nothing is created until the first call on it. */
export function createTracker(uri?: string, options: TrackerOptions = {}): Tracker {
  const target = resolveTrackingUri(uri, options);
  let logger = options.logger;
  const lazy = () => (logger ??= createLogger({ name: "ms-tracking" }));
  const store: Store = target.kind === "file" ? new FileStore(target.root, { logger: lazy }) : openRest(target.url, options, lazy);
  return new ValidatingTracker(store, lazy);
}

function openRest(url: string, options: TrackerOptions, logger: () => Logger): RestStore {
  return new RestStore(url, restOptions(options, logger));
}

/** The REST transport's auth, retry budget and logger from the options and the environment (MLFLOW_TRACKING_*). */
export function restOptions(options: TrackerOptions, logger: () => Logger): RestTransportOptions {
  const env = options.env ?? process.env;
  const auth: RestAuth = options.auth ?? {
    token: env.MLFLOW_TRACKING_TOKEN || undefined,
    username: env.MLFLOW_TRACKING_USERNAME || undefined,
    password: env.MLFLOW_TRACKING_PASSWORD || undefined,
  };
  const budget = env.MS_TRACKING_RETRY_TIMEOUT_MS;
  let retry = options.retry;
  if (!retry && budget !== undefined) {
    const ms = Number(budget);
    if (!Number.isFinite(ms) || ms < 0)
      throw new BadParameterError("MS_TRACKING_RETRY_TIMEOUT_MS", `"${budget}" is not a number of milliseconds`);
    retry = { maxTotalMs: ms };
  }
  return { auth, retry, logger };
}
