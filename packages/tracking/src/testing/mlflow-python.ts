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
import { parseJsonText } from "@ms/contracts";
import { z } from "zod";

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const READ_SCRIPT = path.join(here, "mlflow_read.py");

const PyNumber = z.union([z.number(), z.string()]);

/** What mlflow_read.py prints: an experiment and its runs as MLflow's Python client sees them. */
const PyRunSchema = z.object({
  info: z.object({
    run_id: z.string(),
    run_name: z.string(),
    experiment_id: z.string(),
    status: z.string(),
    start_time: z.number(),
    end_time: z.number().nullable(),
    artifact_uri: z.string(),
    user_id: z.string(),
  }),
  params: z.record(z.string(), z.string()),
  tags: z.record(z.string(), z.string()),
  metrics: z.record(z.string(), PyNumber),
  history: z.record(z.string(), z.array(z.object({ value: PyNumber, step: z.number(), timestamp: z.number() }))),
  artifacts: z.array(z.object({ path: z.string(), size: z.number().nullable() })),
});
export type PyRun = z.infer<typeof PyRunSchema>;

const PyReadResultSchema = z.object({
  experiment: z.object({ experiment_id: z.string(), name: z.string(), lifecycle_stage: z.string() }).nullable(),
  runs: z.array(PyRunSchema),
});
export type PyReadResult = z.infer<typeof PyReadResultSchema>;

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
export async function pythonJson<S extends z.ZodType>(
  venv: string,
  schema: S,
  code: string,
  args: string[] = [],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<z.output<S>> {
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
