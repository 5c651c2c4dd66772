/**
 * The als out-of-fold model's fold fit: the als step's ALS-WR (its maths, WASM kernel and worker
 * threads, through @ms/als's public API) on the rows of one fold's training part.
 */
import { fitProblem, inProcessRunner, prepareProblem, threadRunner } from "@ms/als";

/** Ratings as typed columns (oof.ts's OofRatings, structurally). */
interface Columns {
  rows: number;
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
}

/** The als step's fit settings and the threads to fit with. */
export interface AlsFitSettings {
  rank: number;
  maxIter: number;
  regParam: number;
  nonnegative: boolean;
  numThreads: number;
}

/** Factors with their sorted ids (oof.ts's FactorSet, structurally). */
interface Fitted {
  rank: number;
  userIds: Int32Array;
  userFactors: Float32Array;
  itemIds: Int32Array;
  itemFactors: Float32Array;
}

/** ALS-WR on `rows` (the als step's maths and threads); factors with their sorted ids. */
export async function alsFit(
  ratings: Columns,
  rows: Int32Array,
  settings: AlsFitSettings,
  seed: number,
  signal?: AbortSignal,
): Promise<Fitted> {
  const mask = new Uint8Array(ratings.rows);
  for (let k = 0; k < rows.length; k++) mask[rows[k]] = 1;
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
