/**
 * The model a server holds: a run's model opened through @ms/serve (`locateRun`, `openModel`),
 * its synchronous pair scorer, and what `/recommend` needs beside it (the movies each user rated
 * in the run's ratings, to leave them out), and the run's cold-start rule (@ms/serve's
 * `coldStartRuleOf`, fitted once here) for the pairs with an id the model has no factors for. `loadServing` opens the model a `LocateOptions` names;
 * the server calls it again on SIGHUP or every refresh period and swaps when the run changed.
 */
import { readRatingsColumns } from "@ms/etl";
import { openRanker, type Ranker } from "@ms/rank";
import type { ColdStartRule } from "@ms/contracts";
import {
  coldStartRuleOf,
  kerasServing,
  locateRun,
  modelDirs,
  openModel,
  type LocateOptions,
  type ModelKind,
  type PairScorer,
} from "@ms/serve";

export interface ServingModel {
  runId: string;
  kind: ModelKind;
  /** Where it came from, as the operator named it (a model URI, a run id, or "latest"). */
  source: string;
  scorer: PairScorer;
  /** Scores the pairs `scorer` has no factors for, as `ms predict` and the pyfunc do. */
  coldStart: ColdStartRule;
  /** Sorted ids of the movies the model can score: the candidates of `/recommend`. */
  movieIds: Int32Array;
  /** The movies a user rated in the run's ratings (sorted): `/recommend`'s exclusions and the ranker's history. */
  rated(userId: number): Int32Array;
  /** The run's ranking model (the rank step's), when it has one: `/recommend` ranks with it. */
  ranker?: Ranker;
  dispose(): void;
}

export interface LoadOptions extends LocateOptions {
  model?: ModelKind;
  /** What the operator named, for logs and `/model` (a model URI, a run id, or "latest"). */
  source: string;
}

/** Per user, the sorted movies they rated: one pass over the ratings, CSR layout. */
function ratedIndex(userIds: Int32Array, movieIds: Int32Array, rows: number): (userId: number) => Int32Array {
  const order = Array.from({ length: rows }, (_, i) => i).sort((a, b) => userIds[a] - userIds[b] || movieIds[a] - movieIds[b]);
  const users: number[] = [];
  const starts: number[] = [];
  const movies = new Int32Array(rows);
  for (let k = 0; k < rows; k++) {
    const i = order[k];
    if (users[users.length - 1] !== userIds[i]) {
      users.push(userIds[i]);
      starts.push(k);
    }
    movies[k] = movieIds[i];
  }
  starts.push(rows);
  const byUser = new Map(users.map((u, j) => [u, movies.subarray(starts[j], starts[j + 1])]));
  const none = new Int32Array(0);
  return (userId) => byUser.get(userId) ?? none;
}

/** Opens the model `o` names (default: the run's keras model, else its ALS one when keras cannot score new pairs). */
export async function loadServing(o: LoadOptions): Promise<ServingModel> {
  const run = await locateRun(o);
  let kind: ModelKind = o.model ?? "keras";
  let dirs = modelDirs(run, kind);
  if (kind === "keras" && o.model === undefined && dirs.model && !(await kerasServing(dirs.model)).servable) {
    o.logger?.warn({ model: dirs.model }, "the run's keras model cannot score new pairs; serving its ALS model");
    kind = "als";
    dirs = modelDirs(run, kind);
  }
  const model = await openModel(kind, dirs);
  try {
    const ratings = await readRatingsColumns(dirs.ratings);
    const rated = ratedIndex(ratings.userIds, ratings.movieIds, ratings.rows);
    const coldStart = coldStartRuleOf(run, ratings);
    const movieIds = model.movieIds.filter((m) => model.scorer.hasMovie(m));
    const rankEntry = run.entries.find((e) => e.manifest.kind === "ranker");
    const ranker = rankEntry ? await openRanker(rankEntry.dir) : undefined;
    return {
      runId: run.runId,
      kind,
      source: o.source,
      scorer: model.scorer,
      coldStart,
      movieIds,
      rated,
      ...(ranker ? { ranker } : {}),
      dispose: () => model.dispose(),
    };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/**
 * A source over the tracking store: `resolve` finds the run `o` names afresh each time (a model
 * URI through the registry, so a moved alias is seen; else its `runId`, else the latest finished
 * run), as the ms run's (parent) id; `open` loads that run's model.
 */
export function locateSource(o: LoadOptions): { resolve(): Promise<string>; open(runId: string): Promise<ServingModel> } {
  return {
    // A model URI (`o.modelUri`) is resolved by locateRun through the registry, afresh each call.
    resolve: async () => (await locateRun(o)).runId,
    open: (runId) => loadServing({ ...o, modelUri: undefined, runId }),
  };
}
