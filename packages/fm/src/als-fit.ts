/**
 * The als out-of-fold model's fold fit: the als step's ALS-WR on the rows of one fold's training
 * part, through @ms/als's public API. With als_engine=local, its maths, WASM kernel and worker
 * threads on this machine; with als_engine=spark, its Spark engine: the fold is written as a
 * ratings file whose split_key marks the fold's training rows (0) and every other rating (1), fitted
 * with split=file (so the job's test error is the fold's held-out error, cold rows by the
 * cold-start rule), and its factors read back; the fold's files (and its staged copy, when the
 * staging directory is local) are removed after the fit.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import {
  alsSpark,
  fitProblem,
  inProcessRunner,
  prepareProblem,
  readFactors,
  resolveAlsParams,
  threadRunner,
  type SparkParams,
} from "@ms/als";
import type { StepContext } from "@ms/contracts";
import { writeRatingsColumns } from "@ms/etl";

/** Ratings as typed columns (oof.ts's OofRatings, structurally). */
interface Columns {
  rows: number;
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
}

/** Where the fold fits run when the engine is Spark: its parameters (the als step's), a scratch directory, the step's context. */
export interface SparkFoldFits {
  params: SparkParams;
  /** A directory of this fm run's own; each fold's ratings and factors go under it and are removed after reading. */
  scratch: string;
  ctx: Partial<StepContext>;
}

/** The als step's fit settings and the threads to fit with (or Spark, with `spark`). */
export interface AlsFitSettings {
  rank: number;
  maxIter: number;
  regParam: number;
  nonnegative: boolean;
  numThreads: number;
  /** Set with als_engine=spark: the fold fits run there. */
  spark?: SparkFoldFits;
}

/** Factors with their sorted ids (oof.ts's FactorSet, structurally). */
interface Fitted {
  rank: number;
  userIds: Int32Array;
  userFactors: Float32Array;
  itemIds: Int32Array;
  itemFactors: Float32Array;
}

/** ALS-WR on `rows` (the als step's maths, on its threads or on Spark); factors with their sorted ids. */
export async function alsFit(
  ratings: Columns,
  rows: Int32Array,
  settings: AlsFitSettings,
  seed: number,
  signal?: AbortSignal,
): Promise<Fitted> {
  const mask = new Uint8Array(ratings.rows);
  for (let k = 0; k < rows.length; k++) mask[rows[k]] = 1;
  if (settings.spark) return alsFitSpark(ratings, mask, settings, settings.spark, seed, signal);
  const problem = prepareProblem(ratings, mask, {
    rank: settings.rank,
    maxIter: settings.maxIter,
    regParam: settings.regParam,
    nonnegative: settings.nonnegative,
    seed,
  });
  const runner = (await threadRunner(problem.state, settings.numThreads, signal)) ?? inProcessRunner(problem.state, undefined, signal);
  try {
    await fitProblem(problem, settings.maxIter, runner, undefined, signal);
  } finally {
    await runner.close();
  }
  return {
    rank: settings.rank,
    userIds: problem.users.ids,
    userFactors: problem.state.userFactors,
    itemIds: problem.items.ids,
    itemFactors: problem.state.itemFactors,
  };
}

/** The fold fit on Spark: split_key = 0 for the fold's training rows, 1 for the rest; split=file trains on key < 0.5. */
async function alsFitSpark(
  ratings: Columns,
  mask: Uint8Array,
  settings: AlsFitSettings,
  spark: SparkFoldFits,
  seed: number,
  signal: AbortSignal | undefined,
): Promise<Fitted> {
  const dir = path.join(spark.scratch, `fold-${seed}-${randomBytes(4).toString("hex")}`);
  await mkdir(dir, { recursive: true });
  try {
    const splitKey = new Float32Array(ratings.rows);
    for (let i = 0; i < ratings.rows; i++) splitKey[i] = mask[i] === 1 ? 0 : 1;
    const file = path.join(dir, "ratings.parquet");
    await writeRatingsColumns(file, { userIds: ratings.userIds, movieIds: ratings.movieIds, ratings: ratings.ratings, splitKey });
    const params = resolveAlsParams({
      als_rank: settings.rank,
      als_max_iter: settings.maxIter,
      als_reg_param: settings.regParam,
      als_nonnegative: settings.nonnegative,
      seed,
      split: "file",
      split_prop: 0.5,
      ...spark.params,
    });
    const out = path.join(dir, "factors");
    // The file was written just now from checked columns: no manifest to verify.
    await alsSpark(file, params, out, { ...spark.ctx, signal, inputsVerified: true, metrics: undefined }, { dropStagedRatings: true });
    const f = await readFactors(out);
    return { rank: f.rank, userIds: f.userIds, userFactors: f.userFactors, itemIds: f.itemIds, itemFactors: f.itemFactors };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
