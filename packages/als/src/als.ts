/**
 * The als step (the seed's `train_als`): explicit ALS-WR with Spark MLlib semantics on the
 * ratings artifact, published as Spark-schema factor tables plus a manifest. Parameters keep the
 * seed's names and defaults; the split comes from @ms/contracts so keras reuses it exactly.
 */
import {
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
import { fitProblem, prepareProblem, scoreRows } from "./model.js";
import { inProcessRunner, threadRunner } from "./pool.js";
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
const MAX_THREADS = 256;

/** Completes and checks parameters; every bad value names its parameter. */
export function resolveAlsParams(partial: Partial<AlsParams> = {}): AlsParams {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<AlsParams>;
  const p: AlsParams = { ...ALS_DEFAULTS, numThreads: availableParallelism(), ...defined };
  const n = ALS_PARAM_NAMES;
  if (!Number.isInteger(p.rank) || p.rank < 1 || p.rank > MAX_RANK) throw new BadParameterError(n.rank, `must be an integer in [1, ${MAX_RANK}], got ${p.rank}`);
  if (!Number.isInteger(p.maxIter) || p.maxIter < 1) throw new BadParameterError(n.maxIter, `must be an integer >= 1, got ${p.maxIter}`);
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

  const { file, manifest: ratingsManifest } = await resolveRatingsFile(inputs.ratings);
  const digestPromise: Promise<Digest> = ratingsManifest ? Promise.resolve(ratingsManifest.digest) : digestFile(file).then((d) => d.digest);
  const ratings = await loadRatings(inputs.ratings);
  const mask = splitMask(ratings.userIds, ratings.movieIds, params.seed, params.splitProp);
  const problem = prepareProblem(ratings, mask, params);
  const nu = problem.users.ids.length;
  const ni = problem.items.ids.length;
  if (problem.trainRows === 0) throw new BadInputError(`none of the ${ratings.rows} ratings falls in the training split (split_prop ${params.splitProp})`, { file });
  if (nu < 2) throw new BadInputError(`the training ratings hold a single user (userId ${problem.users.ids[0]}); ALS needs at least two users`, { file });
  if (ni < 2) throw new BadInputError(`the training ratings hold a single movie (movieId ${problem.items.ids[0]}); ALS needs at least two movies`, { file });
  logger.info(
    { rows: ratings.rows, train: problem.trainRows, users: nu, movies: ni, rank: params.rank, threads: params.numThreads, loadSeconds: round((performance.now() - started) / 1000) },
    "als: ratings loaded and laid out",
  );

  let runner = await threadRunner(problem.state, params.numThreads);
  if (!runner) {
    logger.warn("als: no built worker script (run the package build); fitting on one thread");
    runner = inProcessRunner(problem.state);
  }
  const fitStarted = performance.now();
  let losses: number[];
  try {
    losses = await fitProblem(
      problem,
      params.maxIter,
      runner,
      (iteration, loss) => {
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
  const train = scoreRows(problem, state.userFactors, state.itemFactors, params.rank, ratings.ratings, mask, 1);
  const test = scoreRows(problem, state.userFactors, state.itemFactors, params.rank, ratings.ratings, mask, 0);
  const testMse = params.coldStartStrategy === "nan" && test.coldRows > 0 ? Number.NaN : test.mse;
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
    ratings: { digest: await digestPromise, rows: ratings.rows },
  };
  metrics.seconds = (performance.now() - started) / 1000;
  const manifest = await writeFactorsArtifact(target, {
    tables: { rank: params.rank, userIds: problem.users.ids, userFactors: state.userFactors, itemIds: problem.items.ids, itemFactors: state.itemFactors },
    details,
    params,
    metrics,
    producedBy: { step: "als", version: ALS_VERSION },
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

function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}
