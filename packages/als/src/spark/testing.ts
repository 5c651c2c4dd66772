/**
 * `@ms/als/testing`: test and benchmark support only, never used by the step at run time. A real
 * Spark standalone cluster on loopback from a pip-installed pyspark, which ships `bin/spark-class`
 * but not `sbin/start-master.sh`: one Master and N Workers started with spark-class in their own
 * process groups, SPARK_LOCAL_IP=127.0.0.1, ready once the master's JSON page lists every worker
 * ALIVE, and stopped (and their scratch directories removed) by `stop()`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/** The master's `/json/` status page, the fields the tests read. */
export interface MasterStatus {
  status: string;
  aliveworkers?: number;
  workers: { id: string; host: string; port: number; state: string; cores: number }[];
  activeapps: SparkApp[];
  completedapps: SparkApp[];
}

export interface SparkApp {
  id: string;
  name: string;
  state: string;
  cores?: number;
  duration?: number;
}

export interface SparkCluster {
  /** `spark://127.0.0.1:PORT` */
  master: string;
  /** `http://127.0.0.1:WEBUI` */
  webUi: string;
  /** Each worker's web UI; its `/json/` lists the executors it ran (`executors`, `finishedexecutors`, each with `appid`). */
  workerUis: string[];
  /** SPARK_HOME of the pyspark used (its bin/spark-submit submits to the cluster). */
  sparkHome: string;
  status(): Promise<MasterStatus>;
  /** Kills worker `index` (SIGKILL to its process group): the master sees it lost. */
  killWorker(index: number): void;
  /** Starts a replacement worker in place of a killed one (and waits until the master counts it alive). */
  restartWorker(index: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** site-packages/pyspark of the venv (or a Spark installation). */
  sparkHome: string;
  /** A free loopback port each time it is called (`freePort` of @ms/tracking/testing). */
  port: () => Promise<number>;
  workers?: number;
  coresPerWorker?: number;
  memoryPerWorker?: string;
  timeoutMs?: number;
}

function launch(sparkHome: string, args: string[], env: NodeJS.ProcessEnv, log: (s: string) => void): ChildProcess {
  const child = spawn(path.join(sparkHome, "bin", "spark-class"), args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout?.on("data", (b: Buffer) => log(b.toString()));
  child.stderr?.on("data", (b: Buffer) => log(b.toString()));
  child.once("error", (e) => log(String(e)));
  return child;
}

async function killTree(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pid = child.pid;
  const gone = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }, 5_000);
  await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
  clearTimeout(t);
}

/** The master's `/json/` page. */
async function fetchMasterStatus(webUi: string): Promise<MasterStatus> {
  const r = await fetch(`${webUi}/json/`, { signal: AbortSignal.timeout(5_000) });
  if (!r.ok) throw new Error(`${webUi}/json/: HTTP ${r.status}`);
  return (await r.json()) as MasterStatus;
}

async function aliveWorkers(webUi: string): Promise<number> {
  return (await fetchMasterStatus(webUi)).workers.filter((w) => w.state === "ALIVE").length;
}

/** Polls the master's page until it counts `count` live workers; a master that exits or a timeout fails with the cluster's log. */
async function waitAlive(webUi: string, count: number, masterProc: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (masterProc.exitCode !== null) throw new Error(`the Spark master exited with ${masterProc.exitCode}:\n${log()}`);
    try {
      if ((await aliveWorkers(webUi)) >= count) return;
    } catch {
      // the master's page is not up yet
    }
    if (Date.now() - started > timeoutMs)
      throw new Error(`the Spark cluster did not get ${count} live workers in ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function workerArgs(o: ClusterOptions, ui: number, scratch: string, master: string): string[] {
  return [
    "org.apache.spark.deploy.worker.Worker",
    "--host",
    "127.0.0.1",
    "--webui-port",
    String(ui),
    "-c",
    String(o.coresPerWorker ?? 1),
    "-m",
    o.memoryPerWorker ?? "1g",
    "-d",
    path.join(scratch, "work"),
    master,
  ];
}

/** SIGKILL to the process group of `child`, if it has one. */
function killGroup(child: ChildProcess | undefined): void {
  if (child?.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Starts a Master and `workers` Workers on 127.0.0.1; resolves once every worker is ALIVE. */
export async function startSparkCluster(o: ClusterOptions): Promise<SparkCluster> {
  const workers = o.workers ?? 2;
  const timeoutMs = o.timeoutMs ?? 180_000;
  const scratch = await mkdtemp(path.join(os.tmpdir(), "ms-spark-cluster-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SPARK_LOCAL_IP: "127.0.0.1",
    SPARK_HOME: o.sparkHome,
    SPARK_LOG_DIR: scratch,
    SPARK_WORKER_DIR: path.join(scratch, "work"),
  };
  let log = "";
  const keep = (s: string) => {
    log = (log + s).slice(-20_000);
  };
  const port = await o.port();
  const webPort = await o.port();
  const master = `spark://127.0.0.1:${port}`;
  const webUi = `http://127.0.0.1:${webPort}`;
  const procs: ChildProcess[] = [];
  procs.push(
    launch(
      o.sparkHome,
      ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", String(port), "--webui-port", String(webPort)],
      env,
      keep,
    ),
  );
  const workerUis: string[] = [];
  const launchWorker = async (index: number) => {
    const ui = await o.port();
    workerUis[index] = `http://127.0.0.1:${ui}`;
    procs[index + 1] = launch(o.sparkHome, workerArgs(o, ui, scratch, master), env, keep);
  };
  const untilAlive = (count: number) => waitAlive(webUi, count, procs[0], timeoutMs, () => log);
  const stop = async () => {
    await Promise.all(procs.map(killTree));
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < workers; i++) await launchWorker(i);
    await untilAlive(workers);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    master,
    webUi,
    workerUis,
    sparkHome: o.sparkHome,
    status: () => fetchMasterStatus(webUi),
    killWorker: (index) => killGroup(procs[index + 1]),
    async restartWorker(index) {
      const before = await aliveWorkers(webUi);
      await launchWorker(index);
      await untilAlive(before + 1);
    },
    stop,
  };
}
