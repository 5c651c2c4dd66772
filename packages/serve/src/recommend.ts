/**
 * What a person gets out of a run without writing code, for one user or a few pairs:
 * `recommend` lists the movies a user has not seen (one user through `recommendBatch`), and
 * `withModel` opens a run's rating model for a caller (predict.ts's `predictRatings` scores
 * given pairs with it). The run is found by `locateRun`.
 */
import { BadParameterError } from "@ms/contracts";
import { recommendBatch, type BatchRecommendation, type BatchRow } from "./batch.js";
import { locateRun, modelDirs, type LocatedRun, type LocateOptions, type RunModelDirs } from "./locate.js";
import type { RecommendKind } from "./recommenders.js";
import { kerasServing, openModel, type ModelKind, type ServedModel } from "./serve.js";

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
