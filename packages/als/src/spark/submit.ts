/**
 * One spark-submit of the PySpark job shipped in this package (spark/als_job.py): its command
 * line, its stdout protocol (JSON lines), the signs on stderr that the master cannot be reached
 * or gives no executors, and the process group killed on abort.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BadInputError, BadParameterError, NetworkError, silentLogger, type StepContext } from "@ms/contracts";
import type { SparkDeployMode, SparkParams } from "../params.js";
import { interruption } from "../pool.js";
import * as v from "valibot";
import { parseSparkConf, stripCredentials } from "./conf.js";

/** Calls `onLine` with each complete line of a child's output stream (a last unterminated line is not a line). */
function onLines(stream: NodeJS.ReadableStream | null | undefined, onLine: (text: string) => void): void {
  let buffered = "";
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(text);
    }
  });
}

/** How long spark-submit may take to bring up the application before the master counts as unreachable. */
export const SPARK_START_TIMEOUT_MS = 180_000;
/** How long an application may wait for its first executor (a cluster with no free cores). */
export const SPARK_RESOURCES_TIMEOUT_MS = 600_000;
/** After SIGTERM, how long spark-submit's process group gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;

/**
 * stderr lines that mean the master (or cluster manager) cannot be reached: the first set names
 * the master itself (a standalone client retries for a minute before giving up, and the
 * SparkContext already exists by then); the second only counts before the application started,
 * since a lost executor later logs the same words.
 */
const MASTER_UNREACHABLE =
  /Failed to connect to master|All masters are unresponsive|Failed to connect to ResourceManager|Retrying connect to server/;
const UNREACHABLE = /Could not connect to|UnknownHostException|Connection refused|Failed to connect to/;

/** The one field of a package.json the job's lookup reads. */
const PackageName = v.looseObject({ name: v.optional(v.string()) });

function isAlsPackage(pkg: string): boolean {
  const parsed = v.safeParse(PackageName, JSON.parse(readFileSync(pkg, "utf8")));
  return parsed.success && parsed.output.name === "@ms/als";
}

/**
 * The job's path. The build copies spark/als_job.py into dist/spark/, so the built code runs (and
 * the driver's code identity hashes) the copy under dist; the TypeScript sources (tests) run the
 * source file.
 */
export function jobScript(): string {
  const here = fileURLToPath(import.meta.url);
  let dir = path.dirname(here);
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (existsSync(pkg) && isAlsPackage(pkg)) {
      const built = path.join(dir, "dist", "spark", "als_job.py");
      return here.startsWith(path.join(dir, "dist") + path.sep) && existsSync(built) ? built : path.join(dir, "spark", "als_job.py");
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error("@ms/als: cannot find its package directory (and spark/als_job.py in it)");
    dir = up;
  }
}

/**
 * The Python spark-submit's driver and executors run the job with. PYSPARK_PYTHON wins; for the
 * spark-submit of a pip-installed pyspark (`<venv>/lib/pythonX/site-packages/pyspark/bin`) the
 * venv's own interpreter, which has numpy (pyspark.ml needs it) where the system python may not.
 */
function pythonEnv(submit: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.PYSPARK_PYTHON) return {};
  const m = /^(.*)\/lib\/python[\d.]+\/site-packages\/pyspark\/bin\/spark-submit$/.exec(path.resolve(submit));
  if (m && existsSync(path.join(m[1], "bin", "python"))) return { PYSPARK_PYTHON: path.join(m[1], "bin", "python") };
  return {};
}

/** One line of the job's stdout protocol: `ms` says which, the other fields depend on it. */
const JobLineSchema = v.looseObject({ ms: v.picklist(["started", "progress", "result", "error"]) });
export type JobLine = v.InferOutput<typeof JobLineSchema>;

/**
 * The Python exception in what the job printed (spark-submit's PythonRunner sends the job's
 * stderr to stdout): the last traceback's final lines, the exception itself last.
 */
export function pythonException(lines: readonly string[]): string | undefined {
  const start = lines.findLastIndex((l) => l.startsWith("Traceback (most recent call last):"));
  if (start < 0) return undefined;
  const body = lines.slice(start + 1);
  // The exception line is the first after the frames that is not indented (a message may run on).
  const end = body.findIndex((l) => l !== "" && !l.startsWith(" "));
  if (end < 0) return undefined;
  const frames = body.slice(0, end).filter((l) => /^\s+File "/.test(l));
  const exception = body
    .slice(end)
    .filter((l) => l.trim() !== "" && !l.startsWith("{"))
    .slice(0, 6);
  return [...exception, ...frames.slice(-2).map((f) => `  at ${f.trim()}`)].join("\n");
}

/** The job's own line, or undefined for anything else it printed. */
function jobLine(text: string): JobLine | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    const parsed = v.safeParse(JobLineSchema, JSON.parse(text));
    return parsed.success ? parsed.output : undefined;
  } catch {
    return undefined;
  }
}

export interface SubmitOptions {
  submit: string;
  params: SparkParams;
  /** `fit`, `split` or `copy`. */
  command: string;
  config: Record<string, unknown>;
  /** Overrides the master (the copy helper runs on local[1]). */
  master?: string;
  deployMode?: SparkDeployMode;
  ctx: Partial<StepContext>;
  onLine?: (line: JobLine) => void;
  env?: NodeJS.ProcessEnv;
  /** `--conf` pairs added before the user's spark_conf (which wins). */
  extraConf?: [string, string][];
}

/** For the short local[1] helper applications (copies): no UI, and a JIT that starts fast. */
export const HELPER_CONF: [string, string][] = [
  ["spark.ui.enabled", "false"],
  ["spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"],
];

export interface SubmitResult {
  result: JobLine | undefined;
  started: JobLine | undefined;
  stderrTail: string;
}

/** A Spark application that ran and failed: exit 1 with Spark's own error text. */
export class SparkApplicationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SparkApplicationError";
  }
}

/** Kills the process group (SIGTERM, SIGKILL after a grace) and resolves once the leader exited. */
async function killGroup(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.pid === undefined) return;
  const pid = child.pid;
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone
    }
  };
  send("SIGTERM");
  const timer = setTimeout(() => send("SIGKILL"), KILL_GRACE_MS);
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([exited.catch(() => undefined), new Promise((r) => (bound = setTimeout(r, KILL_GRACE_MS * 3)))]);
  clearTimeout(timer);
  clearTimeout(bound);
  // The python child and JVM may outlive the leader by a moment: make sure the group is gone.
  send("SIGKILL");
}

/** What one spark-submit said: its protocol lines, the tail of its stderr, and why it was stopped. */
class SubmitWatch {
  started: JobLine | undefined;
  result: JobLine | undefined;
  error: JobLine | undefined;
  submissionId: string | undefined;
  stopping: unknown;
  private unreachable: string | undefined;
  private stderrTail: string[] = [];
  /** What the job printed that is not protocol: its Python tracebacks end up here. */
  private stdoutTail: string[] = [];
  private firstNoResources = 0;
  private progressed = false;

  constructor(
    private readonly o: SubmitOptions,
    private readonly master: string | undefined,
    private readonly stop: (reason: unknown) => void,
  ) {}

  private get logger() {
    return this.o.ctx.logger ?? silentLogger();
  }

  stdout(text: string): void {
    const line = jobLine(text);
    if (!line) {
      this.stdoutTail.push(text);
      if (this.stdoutTail.length > 400) this.stdoutTail = this.stdoutTail.slice(-200);
      this.logger.debug({ line: text }, "als: spark stdout");
      return;
    }
    if (line.ms === "started") this.started = line;
    else if (line.ms === "progress") this.progressed = true;
    else if (line.ms === "result") this.result = line;
    else if (line.ms === "error") this.error = line;
    this.o.onLine?.(line);
  }

  stderr(text: string): void {
    const master = this.master;
    this.stderrTail.push(text);
    if (this.stderrTail.length > 400) this.stderrTail = this.stderrTail.slice(-200);
    this.logger.trace({ line: text }, "als: spark");
    const sub = /(?:Driver successfully submitted as|submission ID) (\S+)/.exec(text);
    if (sub) this.submissionId = sub[1];
    if (!this.unreachable && ((!this.started && UNREACHABLE.test(text)) || (!this.progressed && MASTER_UNREACHABLE.test(text)))) {
      this.unreachable = text.trim();
      this.stop(
        new NetworkError(
          `spark master ${stripCredentials(master ?? "(spark-submit's default)")} is unreachable: ${stripCredentials(this.unreachable)}`,
        ),
      );
    }
    if (/Initial job has not accepted any resources/.test(text)) {
      this.firstNoResources ||= Date.now();
      this.logger.warn(
        { master: stripCredentials(master ?? "") },
        "als: the Spark application has no executors yet (the cluster has no free cores or memory)",
      );
      if (Date.now() - this.firstNoResources > SPARK_RESOURCES_TIMEOUT_MS) {
        this.stop(
          new NetworkError(
            `spark master ${stripCredentials(master ?? "")} gave the application no executors in ${SPARK_RESOURCES_TIMEOUT_MS / 1000} s`,
          ),
        );
      }
    }
  }

  /** The result of an exited spark-submit, or the error it ended with. */
  outcome(code: number | null, signal: NodeJS.Signals | null, deployMode: SparkDeployMode): SubmitResult {
    const { result, started, error } = this;
    const tail = this.stderrTail.slice(-40).join("\n");
    if (this.stopping) throw this.stopping;
    if (code === 0 && (result || deployMode === "cluster")) return { result, started, stderrTail: tail };
    if (error) {
      if (error.kind === "bad_input")
        throw new BadInputError(String(error.message), { file: typeof error.file === "string" ? error.file : undefined });
      throw new SparkApplicationError(`the Spark application failed: ${describeJobError(error)}`);
    }
    const python = pythonException(this.stdoutTail);
    if (python) {
      throw new SparkApplicationError(
        `spark-submit ${this.o.command} ended with ${signal ?? `exit ${code}`}: the job's Python raised ${stripCredentials(python)}`,
      );
    }
    if (!this.progressed && this.stderrTail.some((l) => MASTER_UNREACHABLE.test(l) || (!started && UNREACHABLE.test(l)))) {
      throw new NetworkError(`spark master ${stripCredentials(this.master ?? "")} is unreachable:\n${stripCredentials(tail)}`);
    }
    const exception = this.stderrTail
      .filter((l) => /Exception|Error/.test(l))
      .slice(-8)
      .join("\n");
    throw new SparkApplicationError(
      `spark-submit ${this.o.command} ended with ${signal ?? `exit ${code}`}${result ? "" : " without a result"}: ${stripCredentials(exception || tail)}`,
    );
  }
}

/** The job's `error` line: a Python exception as `Type: message` and its innermost frames; Spark's (JVM) message as it is. */
function describeJobError(error: JobLine): string {
  const message = String(error.message);
  const type = typeof error.type === "string" ? error.type : "";
  if (type === "" || type === "Py4JJavaError" || type === "BadInput") return message;
  const frames = typeof error.traceback === "string" ? error.traceback.split("\n").filter((l) => /^\s+File "/.test(l)) : [];
  return [`${type}: ${message}`, ...frames.slice(-2).map((f) => `  at ${f.trim()}`)].join("\n");
}

/** spark-submit's arguments for one job. */
function submitArgs(o: SubmitOptions, master: string | undefined, deployMode: SparkDeployMode): string[] {
  const args = [...(master ? ["--master", master] : []), "--deploy-mode", deployMode, "--name", `ms-als-${o.command}`];
  for (const [k, v] of [...(o.extraConf ?? []), ...parseSparkConf(o.params.spark_conf)]) args.push("--conf", `${k}=${v}`);
  args.push(jobScript(), o.command, JSON.stringify(o.config));
  return args;
}

/** Runs spark-submit once; resolves on success, throws NetworkError / SparkApplicationError / the abort reason. */
export async function submit(o: SubmitOptions): Promise<SubmitResult> {
  const logger = o.ctx.logger ?? silentLogger();
  const master = o.master ?? o.params.spark_master;
  const deployMode = o.deployMode ?? o.params.spark_deploy_mode;
  const args = submitArgs(o, master, deployMode);
  const env = { ...process.env, ...pythonEnv(o.submit, process.env), ...o.env };
  if (o.ctx.signal?.aborted) throw interruption(o.ctx.signal);
  logger.debug({ submit: o.submit, args: args.slice(0, -1) }, "als: spark-submit");
  // Loaded here, not at import: a cached `ms run` never starts Spark and should not pay for it.
  const { spawn } = await import("node:child_process");
  const child = spawn(o.submit, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve([code, signal]));
  });
  const stop = (reason: unknown): void => {
    if (watch.stopping) return;
    watch.stopping = reason;
    void killGroup(child, exited);
  };
  const watch = new SubmitWatch(o, master, stop);
  onLines(child.stdout, (text) => watch.stdout(text));
  onLines(child.stderr, (text) => watch.stderr(text));
  const startTimer = setTimeout(() => {
    if (!watch.started && deployMode === "client") {
      stop(
        new NetworkError(
          `spark master ${stripCredentials(master ?? "")} did not start the application within ${SPARK_START_TIMEOUT_MS / 1000} s`,
        ),
      );
    }
  }, SPARK_START_TIMEOUT_MS);
  const onAbort = () => {
    stop(interruption(o.ctx.signal));
    // In cluster mode the driver runs on the cluster: killing spark-submit would leave it running.
    if (deployMode === "cluster" && watch.submissionId && master) {
      const killer = spawn(o.submit, ["--master", master, "--kill", watch.submissionId], { env, stdio: "ignore" });
      killer.once("error", () => undefined);
    }
  };
  o.ctx.signal?.addEventListener("abort", onAbort, { once: true });
  let code: number | null;
  let signal: NodeJS.Signals | null;
  try {
    [code, signal] = await exited;
  } catch (spawnError) {
    throw new BadParameterError("als_engine", `cannot run ${o.submit}: ${(spawnError as Error).message}`);
  } finally {
    clearTimeout(startTimer);
    o.ctx.signal?.removeEventListener("abort", onAbort);
  }
  // The leader has gone; its JVM and python children go with the group.
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch {
    // nothing left
  }
  return watch.outcome(code, signal, deployMode);
}
