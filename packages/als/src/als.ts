/**
 * The als step (the seed's `train_als`): explicit ALS-WR with Spark MLlib semantics on the
 * ratings artifact, published as Spark-schema factor tables plus a manifest. Parameters keep the
 * seed's names and defaults; the split comes from @ms/contracts so keras reuses it exactly.
 */
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadInputError,
  BadParameterError,
  digestFile,
  ColdStartRule,
  KEYED_SPLITS,
  silentLogger,
  splitMaskOf,
  splitSpecOf,
  type ArtifactRef,
  type Digest,
  type Logger,
  type Manifest,
  type SplitKind,
  type StepContext,
} from "@ms/contracts";
import { resolveRatingsFile } from "@ms/etl";
import path from "node:path";
import { loadRatings, writeFactorsArtifact, type LoadedRatings } from "./adapter.js";
import { ALS_DEFAULTS, type AlsParams, type AlsStepParams } from "./params.js";
import { fitProblem, nonFiniteRows, prepareProblem, rowsBelow, scoreRows, type Problem } from "./model.js";
import { inProcessRunner, interruption, threadRunner } from "./pool.js";
import { FACTORS_FILES, type FactorsDetails } from "./types.js";
import { ALS_VERSION } from "./version.js";

export interface AlsMetrics {
  [key: string]: number;
  training_nrows: number;
  test_nrows: number;
  /** Test rows whose user or movie has no factors (with split=file scored by the cold-start rule, else dropped; NaN with "nan"). */
  test_cold_start_nrows: number;
  /** The same count under the name every step reports it by (`<step>_test_cold_rows`). */
  test_cold_rows: number;
  train_mse: number;
  test_mse: number;
  train_rmse: number;
  test_rmse: number;
  /** The ALS-WR objective per training rating after the last iteration. */
  train_loss: number;
  fit_seconds: number;
  seconds: number;
}

export interface AlsInputs {
  /** The etl output directory or its ratings.parquet. */
  ratings: string;
}

/** A factors manifest: the local engine records the fit's parameters, the Spark engine also where it ran. */
export type FactorsManifest = Manifest<Partial<AlsStepParams>, AlsMetrics, FactorsDetails>;

export interface AlsResult {
  outputs: { factors: ArtifactRef<"factors"> };
  /** Absolute paths of the two factor tables inside the published directory. */
  paths: { userFactors: string; itemFactors: string };
  metrics: AlsMetrics;
  manifest: FactorsManifest;
}

/**
 * Runs the als step's local fit into `outDir` (created, or replacing an earlier factors output).
 * `params` are resolved (`resolveAlsParams`): this function does not check them again.
 */
export async function als(inputs: AlsInputs, params: AlsParams, outDir: string, ctx: Partial<StepContext> = {}): Promise<AlsResult> {
  const logger = ctx.logger ?? silentLogger();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "factors");
  const started = performance.now();

  if (!ctx.inputsVerified) await assertArtifactIntact(inputs.ratings, "ratings");
  const { file, manifest: ratingsManifest } = await resolveRatingsFile(inputs.ratings);
  const digestsPromise = ratingsDigests(file, ratingsManifest);
  const ratings = await loadRatings(inputs.ratings);
  if (ctx.signal?.aborted) throw interruption(ctx.signal);
  const split = splitSpecOf(params, params.seed);
  refuseOtherSplitKey(split.kind ?? "hash", ratingsManifest?.params.split, file);
  const mask = splitMaskOf(split, ratings);
  const problem = prepareProblem(ratings, mask, {
    rank: params.als_rank,
    maxIter: params.als_max_iter,
    regParam: params.als_reg_param,
    nonnegative: params.als_nonnegative,
    seed: params.seed,
  });
  refuseUnfittable(problem, ratings.rows, params, file);
  logger.info(
    {
      rows: ratings.rows,
      train: problem.trainRows,
      users: problem.users.ids.length,
      movies: problem.items.ids.length,
      rank: params.als_rank,
      threads: params.als_num_threads,
      loadSeconds: round((performance.now() - started) / 1000),
      status: "fitting",
    },
    "als: ratings loaded and laid out",
  );

  const { losses, fitSeconds } = await runFit(problem, params, ctx, logger);

  const { state } = problem;
  const { metrics, nanByChoice } = scoreFit(problem, ratings, mask, params, losses, fitSeconds);
  const details: FactorsDetails = {
    rank: params.als_rank,
    users: problem.users.ids.length,
    items: problem.items.ids.length,
    seed: params.seed,
    splitProp: params.split_prop,
    split,
    coldStartStrategy: params.als_cold_start_strategy,
    ratings: { ...(await digestsPromise), rows: ratings.rows },
  };
  metrics.seconds = (performance.now() - started) / 1000;
  refuseOverflow(metrics, nanByChoice);
  const manifest = await writeFactorsArtifact(target, {
    tables: {
      rank: params.als_rank,
      userIds: problem.users.ids,
      userFactors: state.userFactors,
      itemIds: problem.items.ids,
      itemFactors: state.itemFactors,
    },
    details,
    params,
    metrics,
    producedBy: { step: "als", version: ALS_VERSION },
    signal: ctx.signal,
  });
  for (const [key, value] of Object.entries(metrics)) if (key !== "train_loss") ctx.metrics?.metric(key, value);
  logger.info(
    {
      train_rmse: round(metrics.train_rmse, 4),
      test_rmse: round(metrics.test_rmse, 4),
      fitSeconds: round(fitSeconds),
      seconds: round(metrics.seconds),
    },
    "als: done",
  );
  return {
    outputs: { factors: { kind: "factors", dir: target, digest: manifest.digest } },
    paths: { userFactors: path.join(target, FACTORS_FILES.users), itemFactors: path.join(target, FACTORS_FILES.items) },
    metrics,
    manifest,
  };
}

/** A keyed split reads etl's split_key: it must have been written for that split (time and file keys mean different things). */
export function refuseOtherSplitKey(kind: SplitKind, written: unknown, file: string): void {
  if (!KEYED_SPLITS.includes(kind) || written === undefined || written === kind) return;
  throw new BadParameterError(
    "split",
    `is ${kind}, but the ratings ${file} were written by etl with split=${String(written)}; rerun etl with -P split=${kind}`,
  );
}

/** Refuses a layout ALS cannot fit: no training rating, a single user or movie, or rows left singular by reg_param 0. */
function refuseUnfittable(problem: Problem, rows: number, params: AlsParams, file: string): void {
  if (problem.trainRows === 0)
    throw new BadInputError(`none of the ${rows} ratings falls in the training split (split_prop ${params.split_prop})`, { file });
  if (problem.users.ids.length < 2)
    throw new BadInputError(`the training ratings hold a single user (userId ${problem.users.ids[0]}); ALS needs at least two users`, {
      file,
    });
  if (problem.items.ids.length < 2)
    throw new BadInputError(`the training ratings hold a single movie (movieId ${problem.items.ids[0]}); ALS needs at least two movies`, {
      file,
    });
  if (params.als_reg_param === 0) refuseSingularRows(problem, params.als_rank);
}

/** Refuses a non-finite metric (an overflowed fit), except the test error the "nan" cold-start strategy chose. */
function refuseOverflow(metrics: AlsMetrics, nanByChoice: boolean): void {
  for (const [key, value] of Object.entries(metrics)) {
    if (Number.isFinite(value) || (nanByChoice && (key === "test_mse" || key === "test_rmse"))) continue;
    throw new BadParameterError(
      "als_reg_param",
      `metric ${key} is ${value}: the fit overflowed; use a larger als_reg_param (default ${ALS_DEFAULTS.als_reg_param})`,
    );
  }
}

/** The sweeps on the worker threads (or this thread without a built worker), each iteration's loss to the metrics sink. */
async function runFit(
  problem: Problem,
  params: AlsParams,
  ctx: Partial<StepContext>,
  logger: Logger,
): Promise<{ losses: number[]; fitSeconds: number }> {
  let runner = await threadRunner(problem.state, params.als_num_threads, ctx.signal);
  if (!runner) {
    logger.warn("als: no built worker script (run the package build); fitting on the calling thread");
    runner = inProcessRunner(problem.state, undefined, ctx.signal);
  }
  const fitStarted = performance.now();
  try {
    const losses = await fitProblem(
      problem,
      params.als_max_iter,
      runner,
      (iteration, loss) => {
        // A non-finite objective means non-finite factors: stop now rather than sweep NaNs.
        if (!Number.isFinite(loss)) refuseNonFinite(problem, params, `after iteration ${iteration} (train_loss ${loss})`);
        ctx.metrics?.metric("train_loss", loss, iteration);
        const line = { iteration, of: params.als_max_iter, loss: round(loss, 6), seconds: round((performance.now() - fitStarted) / 1000) };
        if (ctx.progress) logger.info(line, "als: iteration");
        else logger.debug(line, "als: iteration");
      },
      ctx.signal,
    );
    return { losses, fitSeconds: (performance.now() - fitStarted) / 1000 };
  } finally {
    await runner.close();
  }
}

/**
 * Why no test rating could be scored, as the error to throw. An empty test part is the split's
 * doing (lower split_prop); test rows that all lack factors are the data's (each of their users or
 * movies has no rating in the training part, e.g. every user rated one movie), where a smaller
 * training share would only make it worse.
 */
export function unscorableTest(testRows: number, coldRows: number, splitProp: number): BadParameterError | BadInputError {
  if (testRows === 0) {
    return new BadParameterError(
      "split_prop",
      `the test part is empty (split_prop ${splitProp} puts every rating in training), so test_mse would be NaN; lower split_prop`,
    );
  }
  return new BadInputError(
    `none of the ${testRows} test ratings can be scored: ${coldRows} of them have a user or movie with no rating in the training part (too few ratings per user or movie), so test_mse would be NaN; give more ratings per user and movie, or set als_cold_start_strategy=nan`,
  );
}

/**
 * The test error with split=file, whose test rows are never dropped: a row without factors is
 * scored by @ms/contracts' cold-start rule (mean + the known side's bias), so
 *   mse = (sse_warm + sse_cold) / (warm + cold).
 */
function withColdRows(
  problem: Problem,
  ratings: LoadedRatings,
  mask: Uint8Array,
  warm: { rows: number; coldRows: number; mse: number },
): number {
  const rule = new ColdStartRule(ratings, mask);
  let sse = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 || (problem.rowUser[i] >= 0 && problem.rowItem[i] >= 0)) continue;
    const e = rule.predict(ratings.userIds[i], ratings.movieIds[i]) - ratings.ratings[i];
    sse += e * e;
  }
  const scored = warm.rows - warm.coldRows;
  return ((scored > 0 ? warm.mse * scored : 0) + sse) / warm.rows;
}

/** The fit's metrics on the training and test parts; a test error that cannot be scored is refused unless the cold-start strategy chose NaN. */
function scoreFit(
  problem: Problem,
  ratings: LoadedRatings,
  mask: Uint8Array,
  params: AlsParams,
  losses: number[],
  fitSeconds: number,
): { metrics: AlsMetrics; nanByChoice: boolean } {
  const { state } = problem;
  refuseNonFinite(problem, params, "after the fit");
  const train = scoreRows(problem, state.userFactors, state.itemFactors, params.als_rank, ratings.ratings, mask, 1);
  const test = scoreRows(problem, state.userFactors, state.itemFactors, params.als_rank, ratings.ratings, mask, 0);
  const nanByChoice = params.als_cold_start_strategy === "nan" && test.coldRows > 0;
  const fileSplit = params.split === "file" && test.rows > 0;
  const testMse = nanByChoice ? Number.NaN : fileSplit && test.coldRows > 0 ? withColdRows(problem, ratings, mask, test) : test.mse;
  if (!nanByChoice && !Number.isFinite(testMse)) throw unscorableTest(test.rows, test.coldRows, params.split_prop);
  const metrics: AlsMetrics = {
    training_nrows: train.rows,
    test_nrows: test.rows,
    test_cold_start_nrows: test.coldRows,
    test_cold_rows: test.coldRows,
    train_mse: train.mse,
    test_mse: testMse,
    train_rmse: Math.sqrt(train.mse),
    test_rmse: Math.sqrt(testMse),
    train_loss: losses[losses.length - 1],
    fit_seconds: fitSeconds,
    seconds: 0,
  };
  return { metrics, nanByChoice };
}

/** The digests of the ratings that the factors manifest records, so keras can tell the factors' ratings. */
export async function ratingsDigests(file: string, manifest: Manifest | undefined): Promise<{ digest: Digest; fileDigest: Digest }> {
  const entry = manifest?.files.find((f) => f.path === path.basename(file));
  const fileDigest: Digest = entry ? `sha256:${entry.sha256}` : (await digestFile(file)).digest;
  return { digest: manifest?.digest ?? fileDigest, fileDigest };
}

/**
 * With reg_param 0 a row's normal equations Y'Y x = Y'r are singular when the row has fewer
 * ratings than the rank (Y'Y then has rank < k): refuse before fitting rather than publish the
 * NaN or huge factors such rows get.
 */
function refuseSingularRows(problem: Problem, rank: number): void {
  const { state, users, items } = problem;
  const u = rowsBelow(state.byUser.rowPtr, users.ids.length, rank);
  const m = rowsBelow(state.byItem.rowPtr, items.ids.length, rank);
  if (u.count === 0 && m.count === 0) return;
  const example =
    u.count > 0
      ? `userId ${users.ids[u.first]} has ${state.byUser.rowPtr[u.first + 1] - state.byUser.rowPtr[u.first]}`
      : `movieId ${items.ids[m.first]} has ${state.byItem.rowPtr[m.first + 1] - state.byItem.rowPtr[m.first]}`;
  throw new BadParameterError(
    "als_reg_param",
    `0 leaves the normal equations of ${u.count} users and ${m.count} movies singular: each needs at least rank (${rank}) training ratings without regularisation (${example}); use an als_reg_param > 0 (default ${ALS_DEFAULTS.als_reg_param}) or a smaller rank`,
  );
}

/** Refuses factors holding NaN or infinite values, naming the first row's id and reg_param (the usual cause). */
function refuseNonFinite(problem: Problem, params: AlsParams, when: string): void {
  const { state, users, items } = problem;
  const u = nonFiniteRows(state.userFactors, params.als_rank);
  const m = nonFiniteRows(state.itemFactors, params.als_rank);
  if (u.count === 0 && m.count === 0) return;
  const first = u.count > 0 ? `userId ${users.ids[u.first]}` : `movieId ${items.ids[m.first]}`;
  throw new BadParameterError(
    "als_reg_param",
    `the fit diverged ${when}: ${u.count} user and ${m.count} movie factor vectors hold NaN or infinite values (first: ${first}); als_reg_param ${params.als_reg_param} leaves their normal equations (nearly) singular, use a larger als_reg_param (default ${ALS_DEFAULTS.als_reg_param})`,
  );
}

function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}
