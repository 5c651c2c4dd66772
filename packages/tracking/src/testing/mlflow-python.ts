/**
 * Test support of this package's own interop tests: runs mlflow_read.py (and snippets) in the
 * mlflow virtualenv to see our runs through MLflow's own Python client. The shared part (venv,
 * free port, `mlflow server`) is `./index.ts`, exported as `@ms/tracking/testing`.
 */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const READ_SCRIPT = path.join(here, "mlflow_read.py");

/** What mlflow_read.py prints: an experiment and its runs as MLflow's Python client sees them. */
export interface PyRun {
  info: { run_id: string; run_name: string; experiment_id: string; status: string; start_time: number; end_time: number | null; artifact_uri: string; user_id: string };
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, number | string>;
  history: Record<string, Array<{ value: number | string; step: number; timestamp: number }>>;
  artifacts: Array<{ path: string; size: number | null }>;
}
export interface PyReadResult {
  experiment: { experiment_id: string; name: string; lifecycle_stage: string } | null;
  runs: PyRun[];
}

export async function pythonRead(venv: string, trackingUri: string, experimentName: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<PyReadResult> {
  const { stdout } = await exec(path.join(venv, "bin/python"), [READ_SCRIPT, trackingUri, experimentName], {
    env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true", ...extraEnv },
    maxBuffer: 1 << 26,
    timeout: 120_000,
  });
  return JSON.parse(stdout) as PyReadResult;
}

/** Runs a snippet of Python in the venv and parses the JSON it prints. */
export async function pythonJson<T>(venv: string, code: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<T> {
  const { stdout } = await exec(path.join(venv, "bin/python"), ["-c", code, ...args], {
    env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true", ...extraEnv },
    maxBuffer: 1 << 26,
    timeout: 120_000,
  });
  return JSON.parse(stdout) as T;
}

/** Python spells non-finite floats as strings in our JSON; turn them back. */
export function pyNumber(v: number | string): number {
  if (v === "NaN") return Number.NaN;
  if (v === "Infinity") return Number.POSITIVE_INFINITY;
  if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
  return Number(v);
}

export async function makeTempDir(prefix: string): Promise<string> {
  const os = await import("node:os");
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}
