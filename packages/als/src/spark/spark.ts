/**
 * The als step's Spark engine (`engine: "spark"`): runs the PySpark job shipped in this package
 * (spark/als_job.py) through spark-submit on any master, stages the ratings where the executors
 * can read them, relays the application's progress, and publishes the factors it wrote through
 * the same artifact contract (manifest, schema and NaN checks) as the local engine.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cacheLayout } from "@ms/cache";
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadInputError,
  BadParameterError,
  buildArtifactDir,
  defaultCacheDir,
  NetworkError,
  silentLogger,
  writeManifest,
  type StepContext,
} from "@ms/contracts";
import { resolveRatingsFile } from "@ms/etl";
import { readFactorFile } from "../adapter.js";
import { ratingsDigests, type AlsMetrics, type AlsParams, type AlsResult } from "../als.js";
import { interruption } from "../pool.js";
import { FACTORS_FILES, type FactorsDetails } from "../types.js";
import { ALS_VERSION } from "../version.js";

/** Calls `onLine` with each complete line of a child's output stream (a last unterminated line is not a line). */
function onLines(stream: NodeJS.ReadableStream | null | undefined, onLine: (text: string) => void): void {
  let buffered = "";
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(text);
    }
  });
}

export type AlsEngine = "local" | "spark";
export type SparkDeployMode = "client" | "cluster";

/** The Spark engine's parameters (the als step's `engine` and `spark_*`). */
export interface SparkParams {
  engine: AlsEngine;
  /** Any master spark-submit accepts; absent: spark-submit's own default (spark-defaults.conf, else local[*]). */
  sparkMaster?: string;
  /** `key=value,key=value` passed as `--conf`; a comma inside a value is kept when the next piece is not `key=`. */
  sparkConf?: string;
  sparkDeployMode: SparkDeployMode;
  /** A directory every node can reach (a path, file://, hdfs://, s3a://, dbfs:/); default under the step's cache dir. */
  sparkStaging?: string;
  /** Spark ALS's numUserBlocks/numItemBlocks (its default 10); the initialisation depends on it. */
  sparkNumBlocks: number;
}

export const SPARK_DEFAULTS = { engine: "local", sparkDeployMode: "client", sparkNumBlocks: 10 } as const;

/** The driver's names, for errors. */
export const SPARK_PARAM_NAMES: Readonly<Record<keyof SparkParams, string>> = {
  engine: "als_engine",
  sparkMaster: "spark_master",
  sparkConf: "spark_conf",
  sparkDeployMode: "spark_deploy_mode",
  sparkStaging: "spark_staging",
  sparkNumBlocks: "spark_num_blocks",
};

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
const MASTER_UNREACHABLE = /Failed to connect to master|All masters are unresponsive|Failed to connect to ResourceManager|Retrying connect to server/;
const UNREACHABLE = /Could not connect to|UnknownHostException|Connection refused|Failed to connect to/;
/** A conf key whose value is a secret: refused, since every parameter is recorded in tracking. */
const SECRET_KEY = /(secret|password|passwd|token|credential|session\.key|access\.key)/i;

/** Parses `spark_conf`; refuses malformed pieces and secrets (they would be logged as a parameter). */
export function parseSparkConf(text: string | undefined): [string, string][] {
  if (text === undefined || text.trim() === "") return [];
  const out: [string, string][] = [];
  for (const piece of text.split(",")) {
    const m = /^\s*([A-Za-z][\w.-]*)=(.*)$/s.exec(piece);
    if (m) out.push([m[1], m[2]]);
    else if (out.length > 0) out[out.length - 1][1] += `,${piece}`;
    else throw new BadParameterError(SPARK_PARAM_NAMES.sparkConf, `"${piece}" is not key=value (for example spark.executor.memory=2g,spark.executor.cores=2)`);
  }
  for (const [key] of out) {
    if (SECRET_KEY.test(key)) {
      throw new BadParameterError(
        SPARK_PARAM_NAMES.sparkConf,
        `${key} holds a secret, and parameters are recorded in tracking; give it through the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for s3a) or spark-defaults.conf in SPARK_CONF_DIR`,
      );
    }
  }
  return out;
}

/** `scheme://user:pass@host` -> `scheme://host`, at any nesting (`k8s://https://u:p@host`) and for every host of a list (`spark://a@h1,b@h2`). */
export function stripCredentials(url: string): string {
  return url.replace(/(:\/\/|,)[^/@\s,]*@/g, "$1");
}

/** Completes and checks the Spark parameters. */
export function resolveSparkParams(partial: Partial<SparkParams>): SparkParams {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<SparkParams>;
  const p: SparkParams = { ...SPARK_DEFAULTS, ...defined };
  const n = SPARK_PARAM_NAMES;
  if (p.engine !== "local" && p.engine !== "spark") throw new BadParameterError(n.engine, `must be "local" or "spark", got ${JSON.stringify(p.engine)}`);
  if (p.sparkDeployMode !== "client" && p.sparkDeployMode !== "cluster") throw new BadParameterError(n.sparkDeployMode, `must be "client" or "cluster", got ${JSON.stringify(p.sparkDeployMode)}`);
  if (!Number.isInteger(p.sparkNumBlocks) || p.sparkNumBlocks < 1 || p.sparkNumBlocks > 10_000) throw new BadParameterError(n.sparkNumBlocks, `must be an integer in [1, 10000], got ${p.sparkNumBlocks}`);
  if (p.sparkMaster !== undefined) {
    if (p.sparkMaster.trim() === "" || /\s/.test(p.sparkMaster)) throw new BadParameterError(n.sparkMaster, `${JSON.stringify(p.sparkMaster)} is not a master URL (spark://host:7077, yarn, k8s://..., local[N])`);
    if (stripCredentials(p.sparkMaster) !== p.sparkMaster) {
      throw new BadParameterError(n.sparkMaster, "holds credentials (user:password@); the master URL is recorded in tracking, so give them through spark-submit's configuration (spark-defaults.conf, environment) instead");
    }
  }
  if (p.sparkStaging !== undefined && p.sparkStaging.trim() === "") throw new BadParameterError(n.sparkStaging, "is empty");
  parseSparkConf(p.sparkConf);
  return p;
}

/** `$SPARK_HOME/bin/spark-submit` when SPARK_HOME is set, else `spark-submit` on PATH. */
export function findSparkSubmit(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPARK_HOME) {
    const file = path.join(env.SPARK_HOME, "bin", "spark-submit");
    if (!existsSync(file)) throw new BadParameterError("SPARK_HOME", `${file} does not exist (als_engine=spark runs it); point SPARK_HOME at a Spark installation or unset it to use spark-submit on PATH`);
    return file;
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, "spark-submit");
    if (existsSync(file)) return file;
  }
  throw new BadParameterError(
    SPARK_PARAM_NAMES.engine,
    "spark needs spark-submit: SPARK_HOME is not set and no spark-submit is on PATH (set SPARK_HOME to a Spark installation, or to site-packages/pyspark of a pip-installed pyspark)",
  );
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
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "@ms/als") {
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

/** A master whose executors share this machine's file system: local[N], or a standalone master on loopback/this host. */
export function masterIsLocal(master: string | undefined): boolean {
  if (master === undefined || /^local(\[.*\])?$/.test(master)) return true;
  const m = /^spark:\/\/([^:/,]+)/.exec(master);
  return m !== null && (m[1] === "127.0.0.1" || m[1] === "localhost" || m[1] === hostname());
}

/** A URI the node fs can handle: a plain path or file://. */
function localPath(uri: string): string | undefined {
  if (uri.startsWith("file://")) return fileURLToPath(uri);
  if (!/^[a-z][\w+.-]*:/i.test(uri)) return path.resolve(uri);
  return undefined;
}

/** One line of the job's stdout protocol. */
interface JobLine {
  ms: "started" | "progress" | "result" | "error";
  [key: string]: unknown;
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

/** Runs spark-submit once; resolves on success, throws NetworkError / SparkApplicationError / the abort reason. */
export async function submit(o: SubmitOptions): Promise<SubmitResult> {
  const logger = o.ctx.logger ?? silentLogger();
  const master = o.master ?? o.params.sparkMaster;
  const deployMode = o.deployMode ?? o.params.sparkDeployMode;
  const args = [...(master ? ["--master", master] : []), "--deploy-mode", deployMode, "--name", `ms-als-${o.command}`];
  for (const [k, v] of [...(o.extraConf ?? []), ...parseSparkConf(o.params.sparkConf)]) args.push("--conf", `${k}=${v}`);
  args.push(jobScript(), o.command, JSON.stringify(o.config));
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
  let started: JobLine | undefined;
  let result: JobLine | undefined;
  let error: JobLine | undefined;
  let unreachable: string | undefined;
  let submissionId: string | undefined;
  let stderrTail: string[] = [];
  let stopping: unknown;
  let firstNoResources = 0;
  let progressed = false;

  const stop = (reason: unknown) => {
    if (stopping) return;
    stopping = reason;
    void killGroup(child, exited);
  };

  onLines(child.stdout, (text) => {
    let line: JobLine | undefined;
    try {
      const parsed = JSON.parse(text) as JobLine;
      if (parsed && typeof parsed === "object" && typeof parsed.ms === "string") line = parsed;
    } catch {
      // not ours: the job's own prints
    }
    if (!line) {
      logger.debug({ line: text }, "als: spark stdout");
      return;
    }
    if (line.ms === "started") started = line;
    else if (line.ms === "progress") progressed = true;
    else if (line.ms === "result") result = line;
    else if (line.ms === "error") error = line;
    o.onLine?.(line);
  });
  onLines(child.stderr, (text) => {
    stderrTail.push(text);
    if (stderrTail.length > 400) stderrTail = stderrTail.slice(-200);
    logger.trace({ line: text }, "als: spark");
    const sub = /(?:Driver successfully submitted as|submission ID) (\S+)/.exec(text);
    if (sub) submissionId = sub[1];
    if (!unreachable && ((!started && UNREACHABLE.test(text)) || (!progressed && MASTER_UNREACHABLE.test(text)))) {
      unreachable = text.trim();
      stop(new NetworkError(`spark master ${stripCredentials(master ?? "(spark-submit's default)")} is unreachable: ${stripCredentials(unreachable)}`));
    }
    if (/Initial job has not accepted any resources/.test(text)) {
      firstNoResources ||= Date.now();
      logger.warn({ master: stripCredentials(master ?? "") }, "als: the Spark application has no executors yet (the cluster has no free cores or memory)");
      if (Date.now() - firstNoResources > SPARK_RESOURCES_TIMEOUT_MS) {
        stop(new NetworkError(`spark master ${stripCredentials(master ?? "")} gave the application no executors in ${SPARK_RESOURCES_TIMEOUT_MS / 1000} s`));
      }
    }
  });

  const startTimer = setTimeout(() => {
    if (!started && deployMode === "client") {
      stop(new NetworkError(`spark master ${stripCredentials(master ?? "")} did not start the application within ${SPARK_START_TIMEOUT_MS / 1000} s`));
    }
  }, SPARK_START_TIMEOUT_MS);
  const onAbort = () => {
    stop(interruption(o.ctx.signal));
    // In cluster mode the driver runs on the cluster: killing spark-submit would leave it running.
    if (deployMode === "cluster" && submissionId && master) {
      const killer = spawn(o.submit, ["--master", master, "--kill", submissionId], { env, stdio: "ignore" });
      killer.once("error", () => undefined);
    }
  };
  o.ctx.signal?.addEventListener("abort", onAbort, { once: true });
  let code: number | null;
  let signal: NodeJS.Signals | null;
  try {
    [code, signal] = await exited;
  } catch (spawnError) {
    throw new BadParameterError(SPARK_PARAM_NAMES.engine, `cannot run ${o.submit}: ${(spawnError as Error).message}`);
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
  const tail = stderrTail.slice(-40).join("\n");
  if (stopping) throw stopping;
  if (code === 0 && (result || deployMode === "cluster")) return { result, started, stderrTail: tail };
  if (error) {
    if (error.kind === "bad_input") throw new BadInputError(String(error.message), { file: typeof error.file === "string" ? error.file : undefined });
    throw new SparkApplicationError(`the Spark application failed: ${String(error.message)}`);
  }
  if (!progressed && stderrTail.some((l) => MASTER_UNREACHABLE.test(l) || (!started && UNREACHABLE.test(l)))) throw new NetworkError(`spark master ${stripCredentials(master ?? "")} is unreachable:\n${stripCredentials(tail)}`);
  const exception = stderrTail.filter((l) => /Exception|Error/.test(l)).slice(-8).join("\n");
  throw new SparkApplicationError(`spark-submit ${o.command} ended with ${signal ?? `exit ${code}`}${result ? "" : " without a result"}: ${stripCredentials(exception || tail)}`);
}

/** Copies (node fs) to `target` through a temporary name, unless `target` is already there with the same size. */
async function stageLocal(src: string, target: string): Promise<boolean> {
  const want = (await stat(src)).size;
  try {
    if ((await stat(target)).size === want) return false;
  } catch {
    // not staged yet
  }
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await copyFile(src, tmp);
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}

/** The one Parquet part file Spark wrote in `dir` (coalesce(1)). */
async function partFile(dir: string): Promise<string> {
  const parts = (await readdir(dir)).filter((f) => f.startsWith("part-") && f.endsWith(".parquet"));
  if (parts.length !== 1) throw new SparkApplicationError(`${dir}: expected one Parquet part file, found ${parts.length}`);
  return path.join(dir, parts[0]);
}

function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}

/** What the Spark engine records in the manifest's details beside the usual factors facts. */
export interface SparkDetails {
  engine: "spark";
  /** `maxExecutors`: the most executors the application had at once (0 on local masters). */
  spark: { applicationId: string; master: string; deployMode: SparkDeployMode; version: string; executors: string[]; maxExecutors: number };
}

/** Runs the als step on Spark into `outDir`; the result has the local engine's shape. */
export async function alsSpark(
  ratingsInput: string,
  params: AlsParams,
  spark: SparkParams,
  outDir: string,
  ctx: Partial<StepContext> = {},
  /** Tests only: extra fields for the job's config (the split check rides on a fit). */
  options: { jobConfig?: Record<string, unknown> } = {},
): Promise<AlsResult> {
  const logger = ctx.logger ?? silentLogger();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "factors");
  const started = performance.now();
  const submitPath = findSparkSubmit();
  if (!ctx.inputsVerified) await assertArtifactIntact(ratingsInput, "ratings");
  const { file, manifest: ratingsManifest } = await resolveRatingsFile(ratingsInput);
  const digests = await ratingsDigests(file, ratingsManifest);
  const hex = digests.fileDigest.replace(/^sha256:/, "");

  let stagingUri = spark.sparkStaging;
  if (stagingUri === undefined) {
    if (!masterIsLocal(spark.sparkMaster)) {
      throw new BadParameterError(
        SPARK_PARAM_NAMES.sparkStaging,
        `master ${spark.sparkMaster} is not on this machine, so its executors cannot read this machine's cache: give a directory every node can reach (a shared path, hdfs://, s3a://, dbfs:/)`,
      );
    }
    stagingUri = cacheLayout(ctx.cacheDir ?? defaultCacheDir()).sparkStaging;
  }
  const stagingLocal = localPath(stagingUri);
  // A local staging directory goes to Spark as file:// so a cluster whose default file system is
  // HDFS or DBFS still reads it from the (shared or FUSE-mounted) local path.
  const base = stagingLocal ? pathToFileUrl(stagingLocal) : stagingUri.replace(/\/+$/, "");
  const runName = `${Date.now()}-${randomBytes(6).toString("hex")}`;
  const ratingsUri = `${base}/ratings/${hex}/ratings.parquet`;
  const runUri = `${base}/runs/${runName}`;
  const runLocal = stagingLocal ? path.join(stagingLocal, "runs", runName) : undefined;
  const copyParams: SparkParams = { ...spark, sparkDeployMode: "client" };

  // Stage the ratings, content-addressed: a second run (or a rerun with other parameters) reuses them.
  const stageStarted = performance.now();
  let copied: boolean;
  if (stagingLocal) {
    copied = await stageLocal(file, path.join(stagingLocal, "ratings", hex, "ratings.parquet"));
  } else {
    const r = await submit({ submit: submitPath, params: copyParams, master: "local[1]", deployMode: "client", command: "copy", config: { src: pathToFileUrl(file), dst: ratingsUri, reuse: true }, ctx, extraConf: HELPER_CONF });
    copied = r.result?.copied === true;
  }
  logger.info({ staging: stripCredentials(ratingsUri), copied, seconds: round((performance.now() - stageStarted) / 1000) }, copied ? "als: ratings staged for Spark" : "als: reusing the staged ratings");

  let lastProgress = 0;
  let applicationId = "";
  let sparkVersion = "";
  let result: Record<string, unknown> | undefined;
  const onLine = (line: JobLine) => {
    if (line.ms === "started") {
      applicationId = String(line.applicationId);
      sparkVersion = String(line.sparkVersion);
      logger.info({ applicationId, master: stripCredentials(String(line.master)) }, "als: Spark application started");
    } else if (line.ms === "progress") {
      const now = Date.now();
      if (now - lastProgress < 500) return;
      lastProgress = now;
      const view = { phase: line.phase, job: line.job, stage: line.stage, tasks: `${String(line.done)}/${String(line.tasks)}`, failed: line.failed, seconds: round((performance.now() - started) / 1000) };
      if (ctx.progress) logger.info(view, "als: spark progress");
      else logger.debug(view, "als: spark progress");
    }
  };
  try {
    const config = {
      ratings: ratingsUri,
      out: runUri,
      rank: params.rank,
      maxIter: params.maxIter,
      regParam: params.regParam,
      seed: params.seed,
      splitProp: params.splitProp,
      nonnegative: params.nonnegative,
      coldStartStrategy: params.coldStartStrategy,
      numBlocks: spark.sparkNumBlocks,
      appName: "ms-als",
      ...options.jobConfig,
    };
    const r = await submit({ submit: submitPath, params: spark, command: "fit", config, ctx, onLine });
    result = r.result as Record<string, unknown> | undefined;

    // The factors and metrics, read back from the staging directory (copied down first when it is remote).
    let readDir: string;
    let downloaded: string | undefined;
    if (runLocal) readDir = runLocal;
    else {
      downloaded = path.join(cacheLayout(ctx.cacheDir ?? defaultCacheDir()).sparkStaging, "downloads", runName);
      await mkdir(path.dirname(downloaded), { recursive: true });
      await submit({ submit: submitPath, params: copyParams, master: "local[1]", deployMode: "client", command: "copy", config: { src: runUri, dst: pathToFileUrl(downloaded), delete: true }, ctx, extraConf: HELPER_CONF });
      readDir = downloaded;
    }
    try {
      result ??= JSON.parse(await readFile(path.join(readDir, "metrics.json"), "utf8")) as Record<string, unknown>;
      if (!applicationId) applicationId = String(result.applicationId ?? "");
      if (!sparkVersion) sparkVersion = String(result.sparkVersion ?? "");
      const raw = result.metrics as Record<string, number | null>;
      const nanByChoice = params.coldStartStrategy === "nan" && (raw.test_cold_start_nrows ?? 0) > 0;
      const num = (k: string) => (raw[k] === null || raw[k] === undefined ? Number.NaN : Number(raw[k]));
      const metrics: AlsMetrics = {
        training_nrows: num("training_nrows"),
        test_nrows: num("test_nrows"),
        test_cold_start_nrows: num("test_cold_start_nrows"),
        train_mse: num("train_mse"),
        test_mse: num("test_mse"),
        train_rmse: num("train_rmse"),
        test_rmse: num("test_rmse"),
        train_loss: num("train_loss"),
        fit_seconds: num("fit_seconds"),
        seconds: 0,
      };
      if (!nanByChoice && !Number.isFinite(metrics.test_mse)) {
        throw new BadParameterError(
          "split_prop",
          `no test rating can be scored (${metrics.test_nrows} test rows, ${metrics.test_cold_start_nrows} of them without factors), so test_mse would be NaN; lower split_prop (${params.splitProp}) or give more ratings`,
        );
      }
      const users = await partFile(path.join(readDir, "user_factors"));
      const items = await partFile(path.join(readDir, "item_factors"));
      // The same checks as every factors consumer: schema, nulls, one rank, unique ids, finite values.
      const u = await readFactorFile(users);
      const i = await readFactorFile(items);
      if (u.rank !== params.rank || i.rank !== params.rank) throw new SparkApplicationError(`the Spark job wrote rank ${u.rank}/${i.rank} factors, expected ${params.rank}`);
      metrics.seconds = (performance.now() - started) / 1000;
      for (const [key, value] of Object.entries(metrics)) {
        if (Number.isFinite(value) || (nanByChoice && (key === "test_mse" || key === "test_rmse"))) continue;
        throw new BadParameterError("reg_param", `metric ${key} is ${value}: the fit diverged; use a larger reg_param`);
      }
      const details: FactorsDetails & SparkDetails = {
        rank: params.rank,
        users: u.ids.length,
        items: i.ids.length,
        seed: params.seed,
        splitProp: params.splitProp,
        coldStartStrategy: params.coldStartStrategy,
        ratings: { ...digests, rows: metrics.training_nrows + metrics.test_nrows },
        engine: "spark",
        spark: {
          applicationId,
          master: stripCredentials(spark.sparkMaster ?? String(result.master ?? "")),
          deployMode: spark.sparkDeployMode,
          version: sparkVersion,
          executors: Array.isArray(result.executors) ? (result.executors as unknown[]).map(String) : [],
          maxExecutors: Number(result.maxExecutors ?? 0),
        },
      };
      const { numThreads: _threads, ...fitParams } = params;
      const recorded = {
        ...fitParams,
        engine: "spark" as const,
        sparkNumBlocks: spark.sparkNumBlocks,
        sparkDeployMode: spark.sparkDeployMode,
        ...(spark.sparkMaster ? { sparkMaster: stripCredentials(spark.sparkMaster) } : {}),
      };
      const manifest = await buildArtifactDir(target, async (dir) => {
        await copyFile(users, path.join(dir, FACTORS_FILES.users));
        await copyFile(items, path.join(dir, FACTORS_FILES.items));
        if (ctx.signal?.aborted) throw interruption(ctx.signal);
        return writeManifest(dir, {
          kind: "factors",
          files: [FACTORS_FILES.users, FACTORS_FILES.items],
          params: recorded,
          metrics,
          details,
          producedBy: { step: "als", version: ALS_VERSION },
        });
      });
      ctx.metrics?.metric("train_loss", metrics.train_loss, params.maxIter);
      for (const [key, value] of Object.entries(metrics)) if (key !== "train_loss") ctx.metrics?.metric(key, value);
      logger.info(
        { engine: "spark", applicationId, train_rmse: round(metrics.train_rmse, 4), test_rmse: round(metrics.test_rmse, 4), fitSeconds: round(metrics.fit_seconds), seconds: round(metrics.seconds) },
        "als: done",
      );
      return {
        outputs: { factors: { kind: "factors", dir: target, digest: manifest.digest } },
        paths: { userFactors: path.join(target, FACTORS_FILES.users), itemFactors: path.join(target, FACTORS_FILES.items) },
        metrics,
        // The manifest's params hold the Spark fields beside the fit's; its consumers read the fit's.
        manifest: manifest as unknown as AlsResult["manifest"],
      };
    } finally {
      if (downloaded) await rm(downloaded, { recursive: true, force: true });
    }
  } finally {
    // The run's own files (factors, checkpoints) go; the staged ratings stay for the next run.
    if (runLocal) await rm(runLocal, { recursive: true, force: true });
  }
}

function pathToFileUrl(p: string): string {
  return `file://${path.resolve(p)}`;
}
