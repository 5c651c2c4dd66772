/**
 * Test harness: runs the built `ms` bin in a throw-away directory (its own cache, MLflow file
 * store and working directory) and reads back what it wrote.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../../dist/bin.js", import.meta.url));

/** Small synthetic data and small parameters: a cold run takes a couple of seconds. */
export const SMALL = [
  "--dataset",
  "synthetic",
  "-P",
  "synthetic_rows=4000",
  "-P",
  "als_max_iter=2",
  "-P",
  "als_rank=4",
  "-P",
  "keras_epochs=1",
];

export interface Sandbox {
  root: string;
  cache: string;
  mlruns: string;
  env: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

export async function sandbox(prefix = "ms-driver-"): Promise<Sandbox> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  const cache = path.join(root, "cache");
  const mlruns = path.join(root, "mlruns");
  const env: NodeJS.ProcessEnv = { ...process.env, MS_CACHE_DIR: cache, MLFLOW_TRACKING_URI: mlruns, LOG_LEVEL: "info" };
  delete env.MS_TEST_FS_FAULT;
  delete env.MS_DATASETS_DIR;
  return { root, cache, mlruns, env, dispose: () => rm(root, { recursive: true, force: true }) };
}

const FS_FAULT = new URL("./fs-fault.mjs", import.meta.url).href;

/**
 * The environment of an `ms` child whose cache directory fails writes: `<ERRNO>` (every write, a
 * read-only or full file system) or `<ERRNO>:publish` (only publishing an entry); see fs-fault.mjs.
 */
export function fsFault(spec: string): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${FS_FAULT}`.trim(), MS_TEST_FS_FAULT: spec };
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function spawnMs(args: readonly string[], box: Sandbox, extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { cwd: box.root, env: { ...box.env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
}

export function finish(child: ChildProcess): Promise<Result> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function ms(args: readonly string[], box: Sandbox, extraEnv: NodeJS.ProcessEnv = {}): Promise<Result> {
  return finish(spawnMs(args, box, extraEnv));
}

export interface StepDoc {
  step: string;
  cached: boolean;
  source: "local" | "remote" | "computed";
  remote?: { direction: "down" | "up"; bytes: number; blobs: number; seconds: number };
  key: string;
  runId: string;
  outputs: Record<string, { dir?: string; file?: string; digest: string; kind: string }>;
  metrics: Record<string, number>;
  seconds: number;
}

export interface RunDoc {
  runId: string;
  steps: StepDoc[];
  report?: string;
  /** The final model as an MLflow Model. */
  model?: { uri: string; runId: string; kind: string; modelId?: string };
}

/** Runs `ms run --json` and parses its one document; fails with stderr when the exit code is not 0. */
export async function runJson(args: readonly string[], box: Sandbox, extraEnv: NodeJS.ProcessEnv = {}): Promise<RunDoc> {
  const r = await ms(["run", ...args, "--json"], box, extraEnv);
  if (r.code !== 0) throw new Error(`ms run exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout) as RunDoc;
}

export const cachedOf = (doc: RunDoc) => Object.fromEntries(doc.steps.map((s) => [s.step, s.cached]));

/** Kills the child with SIGKILL once a stderr line contains `marker`; resolves whether it was seen. */
export function killOn(child: ChildProcess, marker: string): Promise<{ seen: boolean; stderr: string }> {
  let stderr = "";
  return new Promise((resolve) => {
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (stderr.includes(marker) && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    child.stdout?.resume();
    child.on("close", () => resolve({ seen: stderr.includes(marker), stderr }));
  });
}

export async function listDir(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await readdir(dir)).sort() : [];
}
