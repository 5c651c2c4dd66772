/**
 * The fm step: the out-of-fold features of every rating and the full fit, computed once and
 * published as their own artifact, so a change downstream (the network's size) never refits
 * them. Reads the etl ratings and the als factors (the split and, for the als model, the full
 * fit); writes through adapter.ts. Progress: one record per fit, "fit i/N" with N = folds + 1,
 * and an ETA from the measured fit times (a fold fit sees (k-1)/k of the training part and the
 * full fit all of it, so the full fit is expected to take k/(k-1) of a fold fit's mean).
 */
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadParameterError,
  silentLogger,
  splitMaskOf,
  type Logger,
  type ManifestMetrics,
  type StepContext,
} from "@ms/contracts";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { ALS_DEFAULTS, splitOfFactors } from "@ms/als";
import type { SparkFoldFits } from "./als-fit.js";
import { ratingsDigests, readFactorsArtifact, readRatings, writeFmArtifact, type FmDetails } from "./adapter.js";
import { outOfFoldFeatures, type FactorSet, type OofFeatures, type OofOptions, type OofRatings } from "./oof.js";
import { stackedKnows } from "./stacked.js";
import type { SelectableGroup } from "./select.js";
import type { FmParams } from "./params.js";
import { FM_VERSION } from "./version.js";

export interface FmInputs {
  /** The etl output directory or its ratings.parquet. */
  ratings: string;
  /** The als output directory (factors artifact): the split, and the als model's full fit. */
  factors: string;
}

/**
 * The fm step's metrics (null where a model of `none` has nothing to measure); the parent run
 * carries them step-prefixed (`fm_test_rmse`, `fm_oof_rmse`).
 */
export type FmMetrics = ManifestMetrics;

/** The als model's settings, read from the factors manifest's parameters (the als step's defaults where one is missing); `spark`: fold fits on Spark. */
export function alsSettings(
  factors: FactorSet & { manifest?: { params?: Partial<Record<string, unknown>> } },
  numThreads: number,
  spark?: SparkFoldFits,
): NonNullable<OofOptions["als"]> {
  const p = factors.manifest?.params ?? {};
  return {
    rank: factors.rank,
    maxIter: typeof p.als_max_iter === "number" ? p.als_max_iter : ALS_DEFAULTS.als_max_iter,
    regParam: typeof p.als_reg_param === "number" ? p.als_reg_param : ALS_DEFAULTS.als_reg_param,
    nonnegative: p.als_nonnegative === true,
    numThreads,
    full: factors,
    ...(spark ? { spark } : {}),
  };
}

/** With als_engine=spark, where the als model's fold fits run: the step's Spark parameters and a scratch directory beside its output. */
function sparkFoldFits(params: FmParams, target: string, ctx: Partial<StepContext>): SparkFoldFits | undefined {
  if (params.als_engine !== "spark") return undefined;
  const { als_engine, spark_master, spark_conf, spark_deploy_mode, spark_staging, spark_num_blocks } = params;
  return {
    params: { als_engine, spark_master, spark_conf, spark_deploy_mode, spark_staging, spark_num_blocks },
    scratch: `${target}.spark-folds-${randomBytes(4).toString("hex")}`,
    ctx,
  };
}

/** Logs each fit as "fit i/N" with the seconds left, estimated from the fits measured so far. */
export function fitProgress(folds: number, logger: Logger, metrics: StepContext["metrics"]) {
  const of = folds + 1;
  const foldSeconds: number[] = [];
  logger.info({ fit: 0, of }, `fm: ${of} fits (${folds} folds, then the whole training part)`);
  return (fit: number, seconds: number, samples: number) => {
    if (fit < folds) foldSeconds.push(seconds);
    const mean = foldSeconds.reduce((s, x) => s + x, 0) / Math.max(1, foldSeconds.length);
    // etaSeconds = mean fold fit * (folds left + k/(k-1)), the full fit seeing k/(k-1) of a fold fit's ratings.
    const etaSeconds = fit < folds ? mean * (folds - 1 - fit + folds / (folds - 1)) : 0;
    metrics?.metric("fit_seconds", seconds, fit);
    metrics?.metric("samples_used", samples, fit);
    logger.info(
      { fit: fit + 1, of, seconds: Number(seconds.toPrecision(4)), samples, etaSeconds: Math.round(etaSeconds) },
      fit < folds ? `fm: fit ${fit + 1}/${of} (fold ${fit + 1})` : `fm: fit ${of}/${of} (the whole training part)`,
    );
  };
}

/** RMSE of column 0 against the ratings over rows where `take(i)`; with the number of rows taken. */
function rmseOf(oof: OofFeatures, ratings: Float32Array, take: (i: number) => boolean): { rmse: number | null; rows: number } {
  let sse = 0;
  let rows = 0;
  for (let i = 0; i < ratings.length; i++) {
    if (!take(i)) continue;
    const e = oof.values[i * oof.width] - ratings[i];
    sse += e * e;
    rows++;
  }
  return { rmse: rows > 0 ? Math.sqrt(sse / rows) : null, rows };
}

/** The step's metrics: the full fit on the test rows whose user and movie it knows, the out-of-fold rows, the sweeps per fit. */
export function fmMetrics(oof: OofFeatures, ratings: OofRatings, folds: number): FmMetrics {
  const known = (i: number) =>
    oof.trainMask[i] === 0 &&
    stackedKnows(oof.tables, "user", ratings.userIds[i]) &&
    stackedKnows(oof.tables, "movie", ratings.movieIds[i]);
  const test = rmseOf(oof, ratings.ratings, known);
  const train = rmseOf(oof, ratings.ratings, (i) => oof.trainMask[i] === 1);
  let testRows = 0;
  for (let i = 0; i < ratings.rows; i++) testRows += 1 - oof.trainMask[i];
  const foldSamples = oof.samplesUsed.slice(0, folds);
  return {
    test_rmse: test.rmse,
    oof_rmse: train.rmse,
    test_nrows: test.rows,
    test_cold_rows: testRows - test.rows,
    oof_nrows: train.rows,
    // Every model makes folds + 1 fits (the als model records no sweep counts).
    fits: oof.model === "bayes" ? oof.samplesUsed.length : folds + 1,
    samples_mean: foldSamples.reduce((s, x) => s + x, 0) / Math.max(1, foldSamples.length),
    samples_full: oof.samplesUsed[folds] ?? 0,
    group_implicit_user: oof.features.implicitUser ? 1 : 0,
    group_implicit_movie: oof.features.implicitMovie ? 1 : 0,
    group_time: oof.features.time ? 1 : 0,
    seconds: oof.seconds,
  };
}

/** The `auto` groups to decide: time only where the ratings hold timestamps (else it stays off). */
function autoGroups(params: FmParams, timestamps: boolean): SelectableGroup[] {
  const out: SelectableGroup[] = [];
  if (params.fm_implicit_user === "auto") out.push("implicitUser");
  if (params.fm_implicit_movie === "auto") out.push("implicitMovie");
  if (params.fm_time === "auto" && timestamps) out.push("time");
  return out;
}

/** Metrics naming the groups the fits used (1 on, 0 off), tracked beside the RMSEs. */
const GROUP_METRICS = ["group_implicit_user", "group_implicit_movie", "group_time"] as const;

/** The full fit's predictions of the test rows (column 0 of their features), in ratings order. */
function testPredictionsOf(oof: OofFeatures): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < oof.trainMask.length; i++) if (oof.trainMask[i] === 0) out.push(oof.values[i * oof.width]);
  return Float32Array.from(out);
}

type FmManifest = Awaited<ReturnType<typeof writeFmArtifact<FmParams, FmMetrics>>>;

/** What every fm artifact records about its inputs, read once. */
interface Loaded {
  ratings: OofRatings;
  factors: Awaited<ReturnType<typeof readFactorsArtifact>>;
  base: Pick<FmDetails, "split" | "ratings" | "factors" | "rows">;
}

/** Reads the inputs (checked first unless the caller verified them); ratings the factors were not fitted on are said in a warning. */
async function loadInputs(inputs: FmInputs, ctx: Partial<StepContext>, logger: Logger, timestamps: boolean): Promise<Loaded> {
  if (!ctx.inputsVerified)
    await Promise.all([assertArtifactIntact(inputs.factors, "factors"), assertArtifactIntact(inputs.ratings, "ratings")]);
  const factors = await readFactorsArtifact(inputs.factors);
  const given = await ratingsDigests(inputs.ratings);
  const fitted = factors.details.ratings;
  if (!given.all.includes(fitted.digest) && !(fitted.fileDigest !== undefined && given.all.includes(fitted.fileDigest)))
    logger.warn(
      { factorsRatings: fitted.digest, ratings: given.digest },
      "fm: the factors were fitted on other ratings than the ones given",
    );
  const ratings = await readRatings(inputs.ratings, timestamps);
  const split = splitOfFactors(factors.details);
  const base = {
    split,
    ratings: { digest: given.digest, rows: ratings.rows },
    factors: { digest: factors.manifest.digest },
    rows: ratings.rows,
  };
  return { ratings, factors, base };
}

/** fm_model=none: the train mask only, no features, no fit. */
async function publishNone(target: string, loaded: Loaded, params: FmParams, ctx: Partial<StepContext>, started: number) {
  const { ratings, base } = loaded;
  const trainMask = splitMaskOf(base.split, ratings);
  let testRows = 0;
  for (let i = 0; i < trainMask.length; i++) testRows += 1 - trainMask[i];
  const metrics: FmMetrics = { test_rmse: null, oof_rmse: null, fits: 0, seconds: (performance.now() - started) / 1000 };
  const manifest = await writeFmArtifact(target, {
    details: { model: "none", columns: [], width: 0, testRows, fits: [], ...base },
    values: new Float32Array(0),
    trainMask,
    testPredictions: new Float32Array(0),
    params,
    metrics,
    producedBy: { step: "fm", version: FM_VERSION },
    signal: ctx.signal,
  });
  return { manifest, metrics };
}

/** Runs the fm step into `outDir` (created, or replacing an earlier fm output); `params` are resolved (`resolveFmParams`). */
export async function fm(
  inputs: FmInputs,
  params: FmParams,
  outDir: string,
  ctx: Partial<StepContext> = {},
): Promise<{ manifest: FmManifest; metrics: FmMetrics }> {
  const logger = ctx.logger ?? silentLogger();
  const started = performance.now();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "fm");
  const loaded = await loadInputs(inputs, ctx, logger, params.fm_time !== "false");
  if (params.fm_model === "none") {
    logger.info("fm: fm_model=none, no features");
    return publishNone(target, loaded, params, ctx, started);
  }
  const { ratings, factors, base } = loaded;
  // The time group reads each rating's timestamp, which etl keeps only when asked.
  if (params.fm_time === "true" && !("timestamps" in ratings))
    throw new BadParameterError(
      "fm_time",
      "needs the ratings' timestamps, which this ratings artifact does not hold (the ratings file has no timestamp column, or -P etl_keep_timestamp=false dropped it)",
    );
  const split = base.split;
  const producedBy = { step: "fm", version: FM_VERSION };
  const fits: FmDetails["fits"] = [];
  const progress = fitProgress(params.fm_folds, logger, ctx.metrics);
  const spark = sparkFoldFits(params, target, ctx);
  const oof = await outOfFoldFeatures(ratings, split, {
    model: params.fm_model,
    folds: params.fm_folds,
    rank: params.fm_rank,
    samples: params.fm_max_samples,
    // The cap: each fold fit stops when its own held-out fold stops improving; the full fit runs fold 1's count, beside the other folds.
    maxSamples: params.fm_max_samples,
    fullSamples: "first",
    burnIn: params.fm_burn_in,
    seed: params.fm_seed,
    features: {
      implicitUser: params.fm_implicit_user === "true",
      implicitMovie: params.fm_implicit_movie === "true",
      time: params.fm_time === "true",
      ordinal: params.fm_output === "ordinal",
    },
    select: autoGroups(params, "timestamps" in ratings),
    threads: params.fm_num_threads,
    als: alsSettings(factors, params.fm_num_threads, spark),
    signal: ctx.signal,
    onFit: (fit, seconds, samples) => {
      fits.push({ fit, seconds, samples });
      progress(fit, seconds, samples);
    },
  }).finally(() => (spark ? rm(spark.scratch, { recursive: true, force: true }) : undefined));
  const metrics: FmMetrics = { ...fmMetrics(oof, ratings, params.fm_folds), seconds: (performance.now() - started) / 1000 };
  const testPredictions = testPredictionsOf(oof);
  const details: Omit<FmDetails, "tables"> = {
    model: oof.model,
    columns: [...oof.columns],
    width: oof.width,
    testRows: testPredictions.length,
    fits: fits.sort((a, b) => a.fit - b.fit),
    groups: {
      implicitUser: oof.features.implicitUser === true,
      implicitMovie: oof.features.implicitMovie === true,
      time: oof.features.time === true,
    },
    trials: oof.trials,
    ...base,
  };
  const manifest = await writeFmArtifact(target, {
    details,
    values: oof.values,
    trainMask: oof.trainMask,
    testPredictions,
    tables: oof.tables,
    params,
    metrics,
    producedBy,
    signal: ctx.signal,
  });
  if (oof.trials.length > 0)
    logger.info(
      { trials: oof.trials },
      `fm: feature groups chosen on the first fold: ${oof.trials.map((t) => `${t.group} ${t.kept ? "kept" : "left out"} (held-out RMSE ${t.rmseWithout.toFixed(4)} -> ${t.rmseWith.toFixed(4)})`).join(", ")}`,
    );
  for (const key of ["test_rmse", "oof_rmse", "samples_mean", "samples_full", ...GROUP_METRICS]) {
    const value = metrics[key];
    if (typeof value === "number") ctx.metrics?.metric(key, value);
  }
  logger.info({ test_rmse: metrics.test_rmse, oof_rmse: metrics.oof_rmse, seconds: metrics.seconds }, "fm: done");
  return { manifest, metrics };
}
