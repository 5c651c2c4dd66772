/**
 * What a person gets out of a run without writing code, for one user or a few pairs:
 * `recommend` lists the movies a user has not seen (one user through `recommendBatch`),
 * `predictRatings` scores given (user, movie) pairs, an unknown id being a parameter error (the
 * streamed `predictStream` scores any number of pairs, unknown ids by the cold-start rule), and
 * `withModel` opens a run's rating model for a caller. The run is found by `locateRun`.
 */
import { BadParameterError } from "@ms/contracts";
import { recommendBatch, type BatchRecommendation, type BatchRow } from "./batch.js";
import { locateRun, modelDirs, type LocatedRun, type LocateOptions, type RunModelDirs } from "./locate.js";
import type { RecommendKind } from "./recommenders.js";
import { kerasServing, openModel, publishedRating, type ModelKind, type ServedModel } from "./serve.js";

function describeIds(ids: Int32Array): string {
  return ids.length ? `${ids.length} of them, ids ${ids[0]}..${ids[ids.length - 1]}` : "none";
}

function unknownUser(model: Known, run: LocatedRun, user: number, flag: string): BadParameterError {
  return new BadParameterError(
    flag,
    `user ${user} is not in the training ratings of run ${run.runId}, so the ${model.kind} model has no factors for them (users: ${describeIds(model.userIds)}); this model has no cold-start rule`,
  );
}

export interface RecommendOptions extends LocateOptions {
  userId: number;
  top?: number;
  /** Default: the run's ranker; without one its keras model (or ALS, when keras cannot score new pairs). */
  model?: RecommendKind;
  excludeSeen?: boolean;
  minRatings?: number;
}

export interface RecommendResult {
  runId: string;
  model: RecommendKind;
  userId: number;
  recommendations: BatchRecommendation[];
}

type Known = Pick<ServedModel, "kind" | "userIds" | "movieIds" | "hasUser" | "hasMovie">;

/** Opens the run's model of `o.model` (default keras, else its ALS model), hands it to `use`, and disposes of it. */
export async function withModel<T>(
  o: LocateOptions & { model?: ModelKind },
  use: (model: ServedModel, run: LocatedRun, dirs: RunModelDirs) => Promise<T>,
  check?: (known: Known, run: LocatedRun) => void,
): Promise<T> {
  const run = await locateRun(o);
  let kind: ModelKind = o.model ?? "keras";
  let dirs = modelDirs(run, kind);
  // Without --model, a keras model that cannot score new pairs (an older stacked one) gives way to the run's ALS model (said in the output's `model`).
  if (kind === "keras" && o.model === undefined && dirs.model && !(await kerasServing(dirs.model)).servable) {
    o.logger?.warn(
      { model: dirs.model },
      "the run's keras model cannot score new pairs (it saved no tables for them); using its ALS model",
    );
    kind = "als";
    dirs = modelDirs(run, kind);
  }
  const model = await openModel(kind, dirs, { check: check && ((known) => check(known, run)) });
  try {
    return await use(model, run, dirs);
  } finally {
    model.dispose();
  }
}

/** The `top` movies one user has not seen, best first, from the run's model: one user through `recommendBatch`. */
export async function recommend(o: RecommendOptions): Promise<RecommendResult> {
  const top = o.top ?? 10;
  if (!Number.isInteger(top) || top < 1) throw new BadParameterError("--top", `must be an integer >= 1, got ${top}`);
  let row: BatchRow | undefined;
  const summary = await recommendBatch({ ...o, top, users: [o.userId] }, (r) => {
    row = r;
  });
  if (!row) throw new Error("recommendBatch answered no row");
  if ("error" in row) throw new BadParameterError("--user", row.error);
  return { runId: summary.runId, model: summary.model, userId: o.userId, recommendations: row.recommendations };
}

export interface PredictOptions extends LocateOptions {
  pairs: { userId: number; movieId: number }[];
  model?: ModelKind;
}

export interface PredictResult {
  runId: string;
  model: ModelKind;
  predictions: { userId: number; movieId: number; rating: number }[];
}

/** Predicted ratings of (user, movie) pairs; an id the model has no factors for is a parameter error naming it. */
export async function predictRatings(o: PredictOptions): Promise<PredictResult> {
  if (!o.pairs.length) throw new BadParameterError("--pairs", "no (user, movie) pairs given");
  return withModel(
    o,
    async (model, run) => {
      const users = Int32Array.from(o.pairs, (p) => p.userId);
      const movies = Int32Array.from(o.pairs, (p) => p.movieId);
      const scores = await model.predict(users, movies);
      return {
        runId: run.runId,
        model: model.kind,
        predictions: o.pairs.map((p, i) => ({ userId: p.userId, movieId: p.movieId, rating: publishedRating(scores[i], model) })),
      };
    },
    (known, run) => {
      for (const p of o.pairs) {
        if (!known.hasUser(p.userId)) throw unknownUser(known, run, p.userId, "--user");
        if (!known.hasMovie(p.movieId)) {
          throw new BadParameterError(
            "--movie",
            `movie ${p.movieId} has no ratings in the training data of run ${run.runId}, so the ${known.kind} model has no factors for it (movies: ${describeIds(known.movieIds)})`,
          );
        }
      }
    },
  );
}
