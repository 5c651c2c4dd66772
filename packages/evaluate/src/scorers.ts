/**
 * Every model of a run behind one interface that scores the whole catalog for a batch of users:
 * the rating models (ALS, the keras network, both through @ms/serve's `openModel`; the fm step's
 * full fit through @ms/fm's tables, which @ms/serve does not serve) and popularity. A rating
 * model's batch is one predict call over users x catalog pairs, so the network runs on large
 * tensors rather than once per user.
 */
import type { Factors } from "@ms/als";
import { Fields, readManifest } from "@ms/contracts";
import { FmDetailsSchema, FM_KIND, readTablesDir, stackedKnows, stackedPredictions, type StackedTables } from "@ms/fm";
import { openModel, type ServedModel } from "@ms/serve";
import { checkSignal } from "./signal.js";

/** Scores of the catalog for users; a higher score ranks first. */
export interface Scorer {
  /** The model's name in the metric names (`als`, `keras`, `fm`, `ranker`, `popularity`). */
  readonly model: string;
  /** Row-major users x catalog scores; -Infinity for a movie the model cannot score. `signal` is checked between predict calls. */
  score(userIds: Int32Array, signal?: AbortSignal): Promise<Float32Array>;
  dispose(): void;
}

/** Pairs per predict call: bounds the pair and feature buffers whatever the catalog size. */
export const PAIRS_PER_CALL = 1 << 18;

type Predict = (userIds: Int32Array, movieIds: Int32Array) => Promise<ArrayLike<number>>;

/** A scorer from a pairwise predictor, over the catalog movies it knows. */
export function pairScorer(
  model: string,
  itemIds: Int32Array,
  knows: (movieId: number) => boolean,
  predict: Predict,
  dispose: () => void = () => undefined,
): Scorer {
  const known = Int32Array.from(itemIds.keys()).filter((j) => knows(itemIds[j]));
  const knownIds = Int32Array.from(known, (j) => itemIds[j]);
  return {
    model,
    async score(userIds, signal) {
      const out = new Float32Array(userIds.length * itemIds.length).fill(Number.NEGATIVE_INFINITY);
      const perCall = Math.max(1, Math.floor(PAIRS_PER_CALL / Math.max(1, known.length)));
      for (let start = 0; start < userIds.length; start += perCall) {
        checkSignal(signal);
        const end = Math.min(userIds.length, start + perCall);
        const users = new Int32Array((end - start) * known.length);
        const movies = new Int32Array(users.length);
        for (let u = start; u < end; u++) {
          users.fill(userIds[u], (u - start) * known.length, (u - start + 1) * known.length);
          movies.set(knownIds, (u - start) * known.length);
        }
        const y = await predict(users, movies);
        for (let u = start; u < end; u++) {
          const row = u * itemIds.length;
          const from = (u - start) * known.length;
          for (let j = 0; j < known.length; j++) out[row + known[j]] = y[from + j];
        }
      }
      return out;
    },
    dispose,
  };
}

/** Popularity: each movie's training count, the same list for every user (less what they rated). */
export function popularityScorer(trainCount: Int32Array): Scorer {
  return {
    model: "popularity",
    score: async (userIds) => {
      const out = new Float32Array(userIds.length * trainCount.length);
      for (let u = 0; u < userIds.length; u++) out.set(trainCount, u * trainCount.length);
      return out;
    },
    dispose: () => undefined,
  };
}

/** The ALS factors' scorer, and the factors (the keras network's inputs are built from them). */
export async function alsScorer(factorsDir: string, itemIds: Int32Array): Promise<{ scorer: Scorer; factors: Factors }> {
  const als = await openModel("als", { factors: factorsDir });
  return { scorer: servedScorer(als, itemIds), factors: als.factors };
}

/**
 * The keras network's scorer; UnservableModelError when its network cannot score new pairs.
 * `factors`: the ALS factors it was trained on, read from `dirs.factors` when not given.
 */
export async function kerasScorer(dirs: { factors: string; model: string }, itemIds: Int32Array, factors?: Factors): Promise<Scorer> {
  const inputs = factors ?? (await openModel("als", { factors: dirs.factors })).factors;
  // The light backend the fused trainer uses: scoring 1e5-1e7 pairs needs no libtensorflow.
  const keras = await openModel("keras", dirs, { factors: inputs, backend: "fused" });
  return servedScorer(keras, itemIds);
}

function servedScorer(model: ServedModel, itemIds: Int32Array): Scorer {
  return pairScorer(
    model.kind,
    itemIds,
    (m) => model.hasMovie(m),
    model.predict,
    () => model.dispose(),
  );
}

/** The fm step's full fit (its Bayesian or ALS prediction column), or undefined with a note when the step kept none (fm_model=none). */
export async function fmScorer(dir: string, itemIds: Int32Array, notes: string[]): Promise<Scorer | undefined> {
  const manifest = await readManifest(dir, FM_KIND, { params: Fields, metrics: Fields, details: FmDetailsSchema });
  if (!manifest.details.tables) {
    notes.push(`fm: the fm step ran with fm_model=${manifest.details.model}, so it has no full fit to rank with`);
    return undefined;
  }
  const tables: StackedTables = await readTablesDir(dir, manifest.details.tables);
  return pairScorer(
    "fm",
    itemIds,
    (m) => stackedKnows(tables, "movie", m),
    // The full fit's prediction (column 0 of the pair features), with no timestamp: scored at the end of the training range.
    async (users, movies) => stackedPredictions(tables, users, movies),
  );
}
