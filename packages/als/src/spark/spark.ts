/**
 * The als step's Spark engine (`engine: "spark"`): runs the PySpark job shipped in this package
 * (spark/als_job.py) through spark-submit on any master, stages the ratings where the executors
 * can read them, relays the application's progress, and publishes the factors it wrote through
 * the same artifact contract (manifest, schema and NaN checks) as the local engine.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cacheLayout } from "@ms/cache";
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadParameterError,
  buildArtifactDir,
  checkJson,
  CorruptArtifactError,
  defaultCacheDir,
  parseJsonText,
  recordOf,
  silentLogger,
  splitSpecOf,
  writeManifest,
  type Digest,
  type Logger,
  type StepContext,
} from "@ms/contracts";
import { resolveRatingsFile } from "@ms/etl";
import * as v from "valibot";
import { readFactorFile } from "../adapter.js";
import { ratingsDigests, refuseOtherSplitKey, unscorableTest, type AlsMetrics, type AlsResult } from "../als.js";
import type { AlsStepParams, SparkDeployMode } from "../params.js";
import { interruption } from "../pool.js";
import { FACTORS_FILES, type FactorsDetails } from "../types.js";
import { ALS_VERSION } from "../version.js";
import { findSparkSubmit, masterIsLocal, stripCredentials } from "./conf.js";
import { HELPER_CONF, SparkApplicationError, submit, type JobLine } from "./submit.js";

/** A URI the node fs can handle: a plain path or file://. */
function localPath(uri: string): string | undefined {
  if (uri.startsWith("file://")) return fileURLToPath(uri);
  if (!/^[a-z][\w+.-]*:/i.test(uri)) return path.resolve(uri);
  return undefined;
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

/** The job's result line, or its metrics.json when spark-submit ran the driver on the cluster. */
const JobResult = v.looseObject({
  applicationId: v.optional(v.string()),
  sparkVersion: v.optional(v.string()),
  master: v.optional(v.string()),
  executors: v.optional(v.array(v.unknown())),
  maxExecutors: v.optional(v.number()),
  metrics: recordOf(v.nullable(v.number())),
});
type JobResult = v.InferOutput<typeof JobResult>;

/** Where the ratings and the run's outputs live for the executors, and where this process reads them back. */
interface Staging {
  ratingsUri: string;
  runUri: string;
  runName: string;
  /** The run's directory on this machine's file system, when the staging directory is local. */
  runLocal: string | undefined;
  stagingLocal: string | undefined;
}

/** A copy job (staging in, results out) runs on a local[1] master in client mode, whatever the fit's master. */
function helperCopy(submitPath: string, params: AlsStepParams, ctx: Partial<StepContext>) {
  return { submit: submitPath, params, master: "local[1]", deployMode: "client" as const, command: "copy", ctx, extraConf: HELPER_CONF };
}

function stagingFor(params: AlsStepParams, hex: string, sparkStaging: string): Staging {
  let stagingUri = params.spark_staging;
  if (stagingUri === undefined) {
    if (!masterIsLocal(params.spark_master)) {
      throw new BadParameterError(
        "spark_staging",
        `master ${params.spark_master} is not on this machine, so its executors cannot read this machine's cache: give a directory every node can reach (a shared path, hdfs://, s3a://, dbfs:/)`,
      );
    }
    stagingUri = sparkStaging;
  }
  const stagingLocal = localPath(stagingUri);
  // A local staging directory goes to Spark as file:// so a cluster whose default file system is
  // HDFS or DBFS still reads it from the (shared or FUSE-mounted) local path.
  const base = stagingLocal ? pathToFileUrl(stagingLocal) : stagingUri.replace(/\/+$/, "");
  const runName = `${Date.now()}-${randomBytes(6).toString("hex")}`;
  return {
    ratingsUri: `${base}/ratings/${hex}/ratings.parquet`,
    runUri: `${base}/runs/${runName}`,
    runName,
    runLocal: stagingLocal ? path.join(stagingLocal, "runs", runName) : undefined,
    stagingLocal,
  };
}

/** Stages the ratings, content-addressed: a second run (or a rerun with other parameters) reuses them. */
async function stageRatings(
  file: string,
  hex: string,
  st: Staging,
  submitPath: string,
  params: AlsStepParams,
  ctx: Partial<StepContext>,
  logger: Logger,
): Promise<void> {
  const started = performance.now();
  let copied: boolean;
  if (st.stagingLocal) {
    copied = await stageLocal(file, path.join(st.stagingLocal, "ratings", hex, "ratings.parquet"));
  } else {
    const copy = helperCopy(submitPath, params, ctx);
    const r = await submit({ ...copy, config: { src: pathToFileUrl(file), dst: st.ratingsUri, reuse: true } });
    copied = r.result?.copied === true;
  }
  logger.info(
    { staging: stripCredentials(st.ratingsUri), copied, seconds: round((performance.now() - started) / 1000) },
    copied ? "als: ratings staged for Spark" : "als: reusing the staged ratings",
  );
}

/** Relays the job's protocol lines: its application id and version, and throttled progress. */
function progressRelay(ctx: Partial<StepContext>, logger: Logger, started: number) {
  const seen = { applicationId: "", sparkVersion: "" };
  let lastProgress = 0;
  const onLine = (line: JobLine) => {
    if (line.ms === "started") {
      seen.applicationId = String(line.applicationId);
      seen.sparkVersion = String(line.sparkVersion);
      logger.info(
        { applicationId: seen.applicationId, master: stripCredentials(String(line.master)), status: "Spark application started" },
        "als: Spark application started",
      );
    } else if (line.ms === "progress") {
      const now = Date.now();
      if (now - lastProgress < 500) return;
      lastProgress = now;
      const view = {
        phase: line.phase,
        job: line.job,
        stage: line.stage,
        tasks: `${String(line.done)}/${String(line.tasks)}`,
        failed: line.failed,
        seconds: round((performance.now() - started) / 1000),
        status: `Spark stage ${String(line.stage)}: ${String(line.done)}/${String(line.tasks)} tasks`,
      };
      if (ctx.progress) logger.info(view, "als: spark progress");
      else logger.debug(view, "als: spark progress");
    }
  };
  return { seen, onLine };
}

/** The job's metrics in the local engine's shape; a NaN test error is refused unless the cold-start strategy chose it. */
function jobMetrics(result: JobResult, params: AlsStepParams): { metrics: AlsMetrics; nanByChoice: boolean } {
  const raw = result.metrics;
  const nanByChoice = params.als_cold_start_strategy === "nan" && (raw.test_cold_start_nrows ?? 0) > 0;
  const num = (k: string) => (raw[k] === null || raw[k] === undefined ? Number.NaN : Number(raw[k]));
  const metrics: AlsMetrics = {
    training_nrows: num("training_nrows"),
    test_nrows: num("test_nrows"),
    test_cold_start_nrows: num("test_cold_start_nrows"),
    test_cold_rows: num("test_cold_start_nrows"),
    train_mse: num("train_mse"),
    test_mse: num("test_mse"),
    train_rmse: num("train_rmse"),
    test_rmse: num("test_rmse"),
    train_loss: num("train_loss"),
    fit_seconds: num("fit_seconds"),
    seconds: 0,
  };
  if (!nanByChoice && !Number.isFinite(metrics.test_mse))
    throw unscorableTest(metrics.test_nrows, metrics.test_cold_start_nrows, params.split_prop);
  return { metrics, nanByChoice };
}

/** The metrics.json the job wrote when spark-submit ran its driver on the cluster; missing or not of its schema, it is corrupt. */
async function readJobResult(readDir: string): Promise<JobResult> {
  const file = path.join(readDir, "metrics.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new CorruptArtifactError(`${file}: cannot be read (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  return parseJsonText(text, JobResult, file);
}

interface Fitted {
  result: JobResult;
  applicationId: string;
  sparkVersion: string;
  digests: { digest: Digest; fileDigest: Digest };
}

/** Checks the job's factor tables and publishes them with their manifest at `target`. */
async function publishFactors(
  readDir: string,
  target: string,
  fitted: Fitted,
  params: AlsStepParams,
  ctx: Partial<StepContext>,
  started: number,
): Promise<AlsResult> {
  const { result } = fitted;
  const { metrics, nanByChoice } = jobMetrics(result, params);
  const users = await partFile(path.join(readDir, "user_factors"));
  const items = await partFile(path.join(readDir, "item_factors"));
  // The same checks as every factors consumer: schema, nulls, one rank, unique ids, finite values.
  const u = await readFactorFile(users);
  const i = await readFactorFile(items);
  if (u.rank !== params.als_rank || i.rank !== params.als_rank)
    throw new SparkApplicationError(`the Spark job wrote rank ${u.rank}/${i.rank} factors, expected ${params.als_rank}`);
  metrics.seconds = (performance.now() - started) / 1000;
  for (const [key, value] of Object.entries(metrics)) {
    if (Number.isFinite(value) || (nanByChoice && (key === "test_mse" || key === "test_rmse"))) continue;
    throw new BadParameterError("als_reg_param", `metric ${key} is ${value}: the fit diverged; use a larger als_reg_param`);
  }
  const details: FactorsDetails & SparkDetails = {
    rank: params.als_rank,
    users: u.ids.length,
    items: i.ids.length,
    seed: params.seed,
    splitProp: params.split_prop,
    split: splitSpecOf(params, params.seed),
    coldStartStrategy: params.als_cold_start_strategy,
    ratings: { ...fitted.digests, rows: metrics.training_nrows + metrics.test_nrows },
    engine: "spark",
    spark: {
      applicationId: fitted.applicationId,
      master: stripCredentials(params.spark_master ?? String(result.master ?? "")),
      deployMode: params.spark_deploy_mode,
      version: fitted.sparkVersion,
      executors: (result.executors ?? []).map(String),
      maxExecutors: Number(result.maxExecutors ?? 0),
    },
  };
  // What can change the factors, without the local engine's threads or where Spark ran (the master's credentials never).
  const { als_num_threads: _threads, spark_conf: _conf, spark_staging: _staging, ...recorded } = params;
  if (recorded.spark_master) recorded.spark_master = stripCredentials(recorded.spark_master);
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
  return {
    outputs: { factors: { kind: "factors", dir: target, digest: manifest.digest } },
    paths: { userFactors: path.join(target, FACTORS_FILES.users), itemFactors: path.join(target, FACTORS_FILES.items) },
    metrics,
    manifest,
  };
}

/** Runs the als step on Spark into `outDir`; the result has the local engine's shape. */
export async function alsSpark(
  ratingsInput: string,
  params: AlsStepParams,
  outDir: string,
  ctx: Partial<StepContext> = {},
  /**
   * `jobConfig`, tests only: extra fields for the job's config (the split check rides on a fit).
   * `dropStagedRatings`: ratings made for this one fit (the fm step's folds) leave a local staging
   * directory with the run, instead of staying for the next run.
   */
  options: { jobConfig?: Record<string, unknown>; dropStagedRatings?: boolean } = {},
): Promise<AlsResult> {
  const logger = ctx.logger ?? silentLogger();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "factors");
  const started = performance.now();
  const submitPath = findSparkSubmit();
  if (!ctx.inputsVerified) await assertArtifactIntact(ratingsInput, "ratings");
  const { file, manifest: ratingsManifest } = await resolveRatingsFile(ratingsInput);
  const split = splitSpecOf(params, params.seed);
  refuseOtherSplitKey(split.kind ?? "hash", ratingsManifest?.params.split, file);
  const digests = await ratingsDigests(file, ratingsManifest);
  const hex = digests.fileDigest.replace(/^sha256:/, "");
  const sparkStaging = cacheLayout(ctx.cacheDir ?? defaultCacheDir()).sparkStaging;
  const st = stagingFor(params, hex, sparkStaging);
  await stageRatings(file, hex, st, submitPath, params, ctx, logger);
  const relay = progressRelay(ctx, logger, started);
  const copy = helperCopy(submitPath, params, ctx);
  try {
    const config = {
      ratings: st.ratingsUri,
      out: st.runUri,
      rank: params.als_rank,
      maxIter: params.als_max_iter,
      regParam: params.als_reg_param,
      seed: params.seed,
      splitProp: params.split_prop,
      split,
      nonnegative: params.als_nonnegative,
      coldStartStrategy: params.als_cold_start_strategy,
      numBlocks: params.spark_num_blocks,
      appName: "ms-als",
      ...options.jobConfig,
    };
    const r = await submit({ submit: submitPath, params, command: "fit", config, ctx, onLine: relay.onLine });
    // The factors and metrics, read back from the staging directory (copied down first when it is remote).
    const downloaded = st.runLocal ? undefined : path.join(sparkStaging, "downloads", st.runName);
    if (downloaded) {
      await mkdir(path.dirname(downloaded), { recursive: true });
      await submit({ ...copy, config: { src: st.runUri, dst: pathToFileUrl(downloaded), delete: true } });
    }
    const readDir = downloaded ?? st.runLocal ?? "";
    try {
      const result = r.result ? checkJson(r.result, JobResult, "the Spark job's result line") : await readJobResult(readDir);
      const fitted: Fitted = {
        result,
        applicationId: relay.seen.applicationId || (result.applicationId ?? ""),
        sparkVersion: relay.seen.sparkVersion || (result.sparkVersion ?? ""),
        digests,
      };
      const out = await publishFactors(readDir, target, fitted, params, ctx, started);
      const m = out.metrics;
      ctx.metrics?.metric("train_loss", m.train_loss, params.als_max_iter);
      for (const [key, value] of Object.entries(m)) if (key !== "train_loss") ctx.metrics?.metric(key, value);
      logger.info(
        {
          engine: "spark",
          applicationId: fitted.applicationId,
          train_rmse: round(m.train_rmse, 4),
          test_rmse: round(m.test_rmse, 4),
          fitSeconds: round(m.fit_seconds),
          seconds: round(m.seconds),
        },
        "als: done",
      );
      return out;
    } finally {
      if (downloaded) await rm(downloaded, { recursive: true, force: true });
    }
  } finally {
    // The run's own files (factors, checkpoints) go; the staged ratings stay for the next run.
    if (st.runLocal) await rm(st.runLocal, { recursive: true, force: true });
    if (options.dropStagedRatings && st.stagingLocal)
      await rm(path.join(st.stagingLocal, "ratings", hex), { recursive: true, force: true });
  }
}

function pathToFileUrl(p: string): string {
  return `file://${path.resolve(p)}`;
}
