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
  silentLogger,
  splitMask,
  type ArtifactRef,
  type Digest,
  type Manifest,
  type StepContext,
} from "@ms/contracts";
import { resolveRatingsFile } from "@ms/etl";
import { availableParallelism } from "node:os";
import path from "node:path";
import { loadRatings, writeFactorsArtifact } from "./adapter.js";
import { fitProblem, nonFiniteRows, prepareProblem, rowsBelow, scoreRows, type Problem } from "./model.js";
import { inProcessRunner, interruption, threadRunner } from "./pool.js";
import { FACTORS_FILES, type ColdStartStrategy, type FactorsDetails } from "./types.js";
import { ALS_VERSION } from "./version.js";

export interface AlsParams {
  rank: number;
  maxIter: number;
  regParam: number;
  splitProp: number;
  seed: number;
  coldStartStrategy: ColdStartStrategy;
  /** Spark's `nonnegative`: each row solved as non-negative least squares. */
  nonnegative: boolean;
  /** Threads for the sweeps; the result is bit-identical for any value. */
  numThreads: number;
}

export const ALS_DEFAULTS: Readonly<Omit<AlsParams, "numThreads">> = {
  rank: 12,
  maxIter: 10,
  regParam: 0.1,
  splitProp: 0.8,
  seed: 42,
  coldStartStrategy: "drop",
  nonnegative: false,
};

/** The seed's parameter names, used in error messages and by the driver's `-P key=value`. */
export const ALS_PARAM_NAMES: Readonly<Record<keyof AlsParams, string>> = {
  rank: "rank",
  maxIter: "max_iter",
  regParam: "reg_param",
  splitProp: "split_prop",
  seed: "seed",
  coldStartStrategy: "cold_start_strategy",
  nonnegative: "nonnegative",
  numThreads: "num_threads",
};

const MAX_RANK = 1024;
const MAX_ITER = 10_000;
const MAX_THREADS = 256;

/** Completes and checks parameters; every bad value names its parameter. */
export function resolveAlsParams(partial: Partial<AlsParams> = {}): AlsParams {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<AlsParams>;
  const p: AlsParams = { ...ALS_DEFAULTS, numThreads: availableParallelism(), ...defined };
  const n = ALS_PARAM_NAMES;
  if (!Number.isInteger(p.rank) || p.rank < 1 || p.rank > MAX_RANK) throw new BadParameterError(n.rank, `must be an integer in [1, ${MAX_RANK}], got ${p.rank}`);
  if (!Number.isInteger(p.maxIter) || p.maxIter < 1 || p.maxIter > MAX_ITER) throw new BadParameterError(n.maxIter, `must be an integer in [1, ${MAX_ITER}], got ${p.maxIter}`);
  if (typeof p.regParam !== "number" || !Number.isFinite(p.regParam) || p.regParam < 0) throw new BadParameterError(n.regParam, `must be a finite number >= 0, got ${p.regParam}`);
  if (typeof p.splitProp !== "number" || !(p.splitProp > 0 && p.splitProp < 1)) throw new BadParameterError(n.splitProp, `must be strictly between 0 and 1, got ${p.splitProp}`);
  if (!Number.isSafeInteger(p.seed)) throw new BadParameterError(n.seed, `must be an integer, got ${p.seed}`);
  if (p.coldStartStrategy !== "drop" && p.coldStartStrategy !== "nan") throw new BadParameterError(n.coldStartStrategy, `must be "drop" or "nan", got ${JSON.stringify(p.coldStartStrategy)}`);
  if (typeof p.nonnegative !== "boolean") throw new BadParameterError(n.nonnegative, `must be true or false, got ${JSON.stringify(p.nonnegative)}`);
  if (!Number.isInteger(p.numThreads) || p.numThreads < 1 || p.numThreads > MAX_THREADS) throw new BadParameterError(n.numThreads, `must be an integer in [1, ${MAX_THREADS}], got ${p.numThreads}`);
  return p;
}

export interface AlsMetrics {
  [key: string]: number;
  training_nrows: number;
  test_nrows: number;
  /** Test rows whose user or movie has no factors (dropped, or NaN with "nan"). */
  test_cold_start_nrows: number;
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

export type FactorsManifest = Manifest<AlsParams, AlsMetrics, FactorsDetails>;

export interface AlsResult {
  outputs: { factors: ArtifactRef<"factors"> };
  /** Absolute paths of the two factor tables inside the published directory. */
  paths: { userFactors: string; itemFactors: string };
  metrics: AlsMetrics;
  manifest: FactorsManifest;
}

/** Runs the als step into `outDir` (created, or replacing an earlier factors output). */
export async function als(inputs: AlsInputs, partial: Partial<AlsParams>, outDir: string, ctx: Partial<StepContext> = {}): Promise<AlsResult> {
  const params = resolveAlsParams(partial);
  const logger = ctx.logger ?? silentLogger();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "factors");
  const started = performance.now();

  if (!ctx.inputsVerified) await assertArtifactIntact(inputs.ratings, "ratings");
  const { file, manifest: ratingsManifest } = await resolveRatingsFile(inputs.ratings);
  const digestsPromise = ratingsDigests(file, ratingsManifest);
  const ratings = await loadRatings(inputs.ratings);
  if (ctx.signal?.aborted) throw interruption(ctx.signal);
  const mask = splitMask(ratings.userIds, ratings.movieIds, params.seed, params.splitProp);
  const problem = prepareProblem(ratings, mask, params);
  const nu = problem.users.ids.length;
  const ni = problem.items.ids.length;
  if (problem.trainRows === 0) throw new BadInputError(`none of the ${ratings.rows} ratings falls in the training split (split_prop ${params.splitProp})`, { file });
  if (nu < 2) throw new BadInputError(`the training ratings hold a single user (userId ${problem.users.ids[0]}); ALS needs at least two users`, { file });
  if (ni < 2) throw new BadInputError(`the training ratings hold a single movie (movieId ${problem.items.ids[0]}); ALS needs at least two movies`, { file });
  if (params.regParam === 0) refuseSingularRows(problem, params.rank);
  logger.info(
    { rows: ratings.rows, train: problem.trainRows, users: nu, movies: ni, rank: params.rank, threads: params.numThreads, loadSeconds: round((performance.now() - started) / 1000) },
    "als: ratings loaded and laid out",
  );

  let runner = await threadRunner(problem.state, params.numThreads, ctx.signal);
  if (!runner) {
    logger.warn("als: no built worker script (run the package build); fitting on the calling thread");
    runner = inProcessRunner(problem.state, undefined, ctx.signal);
  }
  const fitStarted = performance.now();
  let losses: number[];
  try {
    losses = await fitProblem(
      problem,
      params.maxIter,
      runner,
      (iteration, loss) => {
        // A non-finite objective means non-finite factors: stop now rather than sweep NaNs.
        if (!Number.isFinite(loss)) refuseNonFinite(problem, params, `after iteration ${iteration} (train_loss ${loss})`);
        ctx.metrics?.metric("train_loss", loss, iteration);
        const line = { iteration, of: params.maxIter, loss: round(loss, 6), seconds: round((performance.now() - fitStarted) / 1000) };
        if (ctx.progress) logger.info(line, "als: iteration");
        else logger.debug(line, "als: iteration");
      },
      ctx.signal,
    );
  } finally {
    await runner.close();
  }
  const fitSeconds = (performance.now() - fitStarted) / 1000;

  const { state } = problem;
  refuseNonFinite(problem, params, "after the fit");
  const train = scoreRows(problem, state.userFactors, state.itemFactors, params.rank, ratings.ratings, mask, 1);
  const test = scoreRows(problem, state.userFactors, state.itemFactors, params.rank, ratings.ratings, mask, 0);
  const nanByChoice = params.coldStartStrategy === "nan" && test.coldRows > 0;
  const testMse = nanByChoice ? Number.NaN : test.mse;
  if (!nanByChoice && !Number.isFinite(test.mse)) {
    throw new BadParameterError(
      ALS_PARAM_NAMES.splitProp,
      `no test rating can be scored (${test.rows} test rows, ${test.coldRows} of them without factors), so test_mse would be NaN; lower split_prop (${params.splitProp}) or give more ratings`,
    );
  }
  const metrics: AlsMetrics = {
    training_nrows: train.rows,
    test_nrows: test.rows,
    test_cold_start_nrows: test.coldRows,
    train_mse: train.mse,
    test_mse: testMse,
    train_rmse: Math.sqrt(train.mse),
    test_rmse: Math.sqrt(testMse),
    train_loss: losses[losses.length - 1],
    fit_seconds: fitSeconds,
    seconds: 0,
  };
  const details: FactorsDetails = {
    rank: params.rank,
    users: nu,
    items: ni,
    seed: params.seed,
    splitProp: params.splitProp,
    coldStartStrategy: params.coldStartStrategy,
    ratings: { ...(await digestsPromise), rows: ratings.rows },
  };
  metrics.seconds = (performance.now() - started) / 1000;
  for (const [key, value] of Object.entries(metrics)) {
    if (Number.isFinite(value) || (nanByChoice && (key === "test_mse" || key === "test_rmse"))) continue;
    throw new BadParameterError(ALS_PARAM_NAMES.regParam, `metric ${key} is ${value}: the fit overflowed; use a larger reg_param (default ${ALS_DEFAULTS.regParam})`);
  }
  const manifest = await writeFactorsArtifact(target, {
    tables: { rank: params.rank, userIds: problem.users.ids, userFactors: state.userFactors, itemIds: problem.items.ids, itemFactors: state.itemFactors },
    details,
    params,
    metrics,
    producedBy: { step: "als", version: ALS_VERSION },
    signal: ctx.signal,
  });
  for (const [key, value] of Object.entries(metrics)) if (key !== "train_loss") ctx.metrics?.metric(key, value);
  logger.info(
    { train_rmse: round(metrics.train_rmse, 4), test_rmse: round(metrics.test_rmse, 4), fitSeconds: round(fitSeconds), seconds: round(metrics.seconds) },
    "als: done",
  );
  return {
    outputs: { factors: { kind: "factors", dir: target, digest: manifest.digest } },
    paths: { userFactors: path.join(target, FACTORS_FILES.users), itemFactors: path.join(target, FACTORS_FILES.items) },
    metrics,
    manifest,
  };
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
    ALS_PARAM_NAMES.regParam,
    `0 leaves the normal equations of ${u.count} users and ${m.count} movies singular: each needs at least rank (${rank}) training ratings without regularisation (${example}); use a reg_param > 0 (default ${ALS_DEFAULTS.regParam}) or a smaller rank`,
  );
}

/** Refuses factors holding NaN or infinite values, naming the first row's id and reg_param (the usual cause). */
function refuseNonFinite(problem: Problem, params: AlsParams, when: string): void {
  const { state, users, items } = problem;
  const u = nonFiniteRows(state.userFactors, params.rank);
  const m = nonFiniteRows(state.itemFactors, params.rank);
  if (u.count === 0 && m.count === 0) return;
  const first = u.count > 0 ? `userId ${users.ids[u.first]}` : `movieId ${items.ids[m.first]}`;
  throw new BadParameterError(
    ALS_PARAM_NAMES.regParam,
    `the fit diverged ${when}: ${u.count} user and ${m.count} movie factor vectors hold NaN or infinite values (first: ${first}); reg_param ${params.regParam} leaves their normal equations (nearly) singular, use a larger reg_param (default ${ALS_DEFAULTS.regParam})`,
  );
}

function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}
