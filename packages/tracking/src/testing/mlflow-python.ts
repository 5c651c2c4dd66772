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
import { parseJsonText, recordOf } from "@ms/contracts";
import * as v from "valibot";

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const READ_SCRIPT = path.join(here, "mlflow_read.py");

const PyNumber = v.union([v.number(), v.string()]);

/** What mlflow_read.py prints: an experiment and its runs as MLflow's Python client sees them. */
const PyRunSchema = v.object({
  info: v.object({
    run_id: v.string(),
    run_name: v.string(),
    experiment_id: v.string(),
    status: v.string(),
    start_time: v.number(),
    end_time: v.nullable(v.number()),
    artifact_uri: v.string(),
    user_id: v.string(),
  }),
  params: recordOf(v.string()),
  tags: recordOf(v.string()),
  metrics: recordOf(PyNumber),
  history: recordOf(v.array(v.object({ value: PyNumber, step: v.number(), timestamp: v.number() }))),
  artifacts: v.array(v.object({ path: v.string(), size: v.nullable(v.number()) })),
});
export type PyRun = v.InferOutput<typeof PyRunSchema>;

const PyReadResultSchema = v.object({
  experiment: v.nullable(v.object({ experiment_id: v.string(), name: v.string(), lifecycle_stage: v.string() })),
  runs: v.array(PyRunSchema),
});
export type PyReadResult = v.InferOutput<typeof PyReadResultSchema>;

export async function pythonRead(
  venv: string,
  trackingUri: string,
  experimentName: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<PyReadResult> {
  const { stdout } = await exec(path.join(venv, "bin/python"), [READ_SCRIPT, trackingUri, experimentName], {
    env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true", ...extraEnv },
    maxBuffer: 1 << 26,
    timeout: 120_000,
  });
  return parseJsonText(stdout, PyReadResultSchema, `${READ_SCRIPT} ${experimentName}`);
}

/** Runs a snippet of Python in the venv and parses the JSON it prints, checked against `schema`. */
export async function pythonJson<S extends v.GenericSchema>(
  venv: string,
  schema: S,
  code: string,
  args: string[] = [],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<v.InferOutput<S>> {
  const { stdout } = await exec(path.join(venv, "bin/python"), ["-c", code, ...args], {
    env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: "true", ...extraEnv },
    maxBuffer: 1 << 26,
    timeout: 120_000,
  });
  return parseJsonText(stdout, schema, "the output of a python snippet");
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
