/**
 * Test support: the Python side of the interop tests. Finds (or builds, through
 * tools/mlflow/ensure-venv.sh) the virtualenv with the pinned `mlflow`, starts `mlflow server`
 * processes on free loopback ports, and runs mlflow_read.py to see our runs through MLflow's own
 * Python client.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, "../../../..");
export const ENSURE_VENV = path.join(REPO_ROOT, "tools/mlflow/ensure-venv.sh");
export const READ_SCRIPT = path.join(here, "mlflow_read.py");

/** Builds the venv when missing (minutes the first time, instant after) and returns its path. */
export async function ensureVenv(): Promise<string> {
  const { stdout } = await exec("bash", [ENSURE_VENV], { maxBuffer: 1 << 24, timeout: 20 * 60_000 });
  return stdout.trim().split("\n").pop() as string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface MlflowServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `mlflow server` and resolves once /health answers. */
export async function startMlflowServer(venv: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<MlflowServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(path.join(venv, "bin/mlflow"), ["server", "--host", "127.0.0.1", "--port", String(port), "--workers", "1", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let log = "";
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    const gone = new Promise((r) => child.once("exit", r));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    }, 5_000);
    await gone;
    clearTimeout(t);
  };
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mlflow server exited with ${child.exitCode}:\n${log}`);
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw new Error(`mlflow server did not become healthy in ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return { url, process: child, stop };
}

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
