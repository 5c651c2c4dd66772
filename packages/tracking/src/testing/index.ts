/**
 * `@ms/tracking/testing`: test support only, never used by the packages at run time. The one home
 * of what tests across the workspace need to talk to real components: a free loopback port, the
 * pinned Python virtualenvs of tools/python/ensure-venv.sh (mlflow, spark, keras), arrays handed
 * to Python as `.npy` files, and a real `mlflow server` started on 127.0.0.1 and stopped again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseJsonFileSync } from "@ms/contracts";
import * as v from "valibot";

const PackageName = v.object({ name: v.optional(v.string()) });

/** The workspace root, found from this file whether it runs from `src/testing` or `dist`. */
function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (existsSync(pkg) && parseJsonFileSync(pkg, PackageName).name === "@ms/tracking") return path.resolve(dir, "../..");
    const up = path.dirname(dir);
    if (up === dir)
      throw new Error("@ms/tracking/testing: cannot find the @ms/tracking package directory (it needs the ms workspace checkout)");
    dir = up;
  }
}

export const REPO_ROOT = findRepoRoot();
export const ENSURE_VENV = path.join(REPO_ROOT, "tools/python/ensure-venv.sh");

/** A TCP port on 127.0.0.1 that was free a moment ago (nothing listens there now). */
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

export type VenvKind = "mlflow" | "spark" | "keras";

/**
 * Builds the pinned virtualenv of `kind` when missing (minutes the first time, instant after;
 * the script's progress goes to our stderr) and returns its directory.
 */
export async function ensurePythonVenv(kind: VenvKind, timeoutMs = 20 * 60_000): Promise<string> {
  const child = spawn("bash", [ENSURE_VENV, kind], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (c, s) => resolve([c, s]));
    });
    if (code !== 0)
      throw new Error(`${ENSURE_VENV} ${kind} failed (${signal ?? `exit ${code}`}${signal === "SIGTERM" ? `, over ${timeoutMs} ms` : ""})`);
  } finally {
    clearTimeout(timer);
  }
  const dir = stdout.trim().split("\n").pop();
  if (!dir) throw new Error(`${ENSURE_VENV} ${kind} printed no directory`);
  return dir;
}

/**
 * A float32 (or float64) array as a NumPy `.npy` file (format 1.0, C order), for the Python side
 * of a comparison (TensorFlow Keras in the keras parity test and benchmarks).
 */
export function writeNpy(file: string, data: Float32Array | Float64Array, shape: readonly number[]): void {
  const descr = data instanceof Float64Array ? "<f8" : "<f4";
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  // The magic, version and length (10 bytes) plus the header end on a 64-byte boundary.
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64) + "\n";
  const pre = Buffer.alloc(10);
  pre.write("\x93NUMPY", 0, "latin1");
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  const fd = openSync(file, "w");
  try {
    writeSync(fd, pre);
    writeSync(fd, Buffer.from(header, "latin1"));
    writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } finally {
    closeSync(fd);
  }
}

/** The virtualenv with the pinned `mlflow` (tools/mlflow/ensure-venv.sh). */
export function ensureMlflowVenv(): Promise<string> {
  return ensurePythonVenv("mlflow");
}

export interface MlflowServer {
  url: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM to its process group, SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** Starts `mlflow server` of `venv` on a free loopback port and resolves once /health answers. */
export async function startMlflowServer(
  venv: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 180_000,
): Promise<MlflowServer> {
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
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
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

export interface MlflowTestServer extends MlflowServer {
  venv: string;
  /** The temp dir holding the server's SQLite database and artifacts; removed by `stop()`. */
  dir: string;
}

/**
 * The usual server for tests: the pinned mlflow venv (built when missing), a SQLite backend and
 * served artifacts in a fresh temp dir. `stop()` stops it and removes the dir.
 */
export async function startMlflowTestServer(prefix = "ms-mlflow-server-"): Promise<MlflowTestServer> {
  const venv = await ensureMlflowVenv();
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  let server: MlflowServer;
  try {
    server = await startMlflowServer(venv, [
      "--backend-store-uri",
      `sqlite:///${path.join(dir, "mlflow.db")}`,
      "--serve-artifacts",
      "--artifacts-destination",
      path.join(dir, "artifacts"),
    ]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    ...server,
    venv,
    dir,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
