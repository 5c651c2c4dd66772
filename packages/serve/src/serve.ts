/**
 * Scoring with a run's models, the one place the workspace calls @ms/keras's and @ms/als's
 * prediction exports for serving (so a change of their API is adapted here only). It knows the
 * model kinds it serves (`MODEL_KINDS`). `openModel` loads the ALS factors, or the keras network
 * with the factors it was trained on, behind one interface that predicts ratings for (user, movie)
 * pairs. A stacked network scores pairs through
 * @ms/keras's `predictStackedPairs` (features from the full fit's tables it saved); the seed's
 * feature sets are assembled from the factors here, exactly as in training.
 */
import path from "node:path";
import * as v from "valibot";
import { BadParameterError, binarySearch, CorruptArtifactError, parseJsonFile, type Manifest } from "@ms/contracts";
import { predictWith, readFactors, type Factors } from "@ms/als";
import {
  FeatureAssembler,
  loadModel,
  pairScorer,
  predict as kerasPredict,
  predictStackedPairs,
  type BackendChoice,
  type LoadedModel,
  type PairScorer,
} from "@ms/keras";

export type { PairScorer };

export const MODEL_KINDS = ["keras", "als"] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/**
 * The keras feature sets a new (user, movie) pair can be scored with: those built from the factors
 * alone, and `stacked` when the model saved its full fit's tables (models from before it did not).
 */
export const SERVABLE_FEATURES: readonly string[] = ["factors", "seed", "factors+dot", "stacked"];

/** The keras model cannot score new pairs (its feature set needs per-rating inputs it did not save). */
export class UnservableModelError extends BadParameterError {
  constructor(
    readonly dir: string,
    readonly features: string,
  ) {
    super(
      "--model",
      `the keras model ${dir} was trained on the "${features}" features without saving the tables that score new pairs (an older model): rerun ms run, or use --model als`,
    );
  }
}

/** The part of a keras model's manifest.json that says whether it can score new pairs. */
const KerasServingManifest = v.object({ details: v.object({ features: v.string(), stacked: v.optional(v.unknown()) }) });

/** The feature set a keras-model directory records, and whether it can score new pairs, read without loading TensorFlow.js. */
export async function kerasServing(dir: string): Promise<{ features: string; servable: boolean }> {
  const { details } = await parseJsonFile(path.join(dir, "manifest.json"), KerasServingManifest);
  const servable = SERVABLE_FEATURES.includes(details.features) && (details.features !== "stacked" || details.stacked !== undefined);
  return { features: details.features, servable };
}

/** Where a run's models are: the factors entry, and the keras-model entry. */
export interface ModelDirs {
  factors: string;
  model?: string;
}

/** Any artifact's manifest, whatever its params, metrics and details. */
export type AnyManifest = Manifest<object, object, object>;

export interface ServedModel {
  kind: ModelKind;
  /** The artifact the predictions come from. */
  dir: string;
  manifest: AnyManifest;
  /** The ALS factors the model was opened with (the keras network's inputs are built from them). */
  factors: Factors;
  /** Sorted ids the model has factors for; a pair outside them cannot be scored. */
  userIds: Int32Array;
  movieIds: Int32Array;
  hasUser(id: number): boolean;
  hasMovie(id: number): boolean;
  /**
   * Predicted ratings of (userIds[i], movieIds[i]); every id must be known. With `timestamps`
   * (seconds, one per pair) a model with time effects scores each pair at its time, as its step
   * scored the test rows; without, at the end of its training range ("now"). Other models ignore them.
   */
  predict(userIds: Int32Array, movieIds: Int32Array, timestamps?: Float64Array): Promise<Float64Array>;
  /**
   * The same predictions, synchronously and into a given buffer (an HTTP server's path: no
   * per-call tensors or promises). Its `hasUser`/`hasMovie` say what it can score (a stacked
   * network: its full fit's ids). The keras network's scorer runs the fused WASM forward pass,
   * whose float32 arithmetic may differ from tfjs' in the last bits.
   */
  scorer: PairScorer;
  dispose(): void;
}

/** Rows per network call: bounds the feature buffer (rows x width floats) for any number of pairs. */
const CHUNK = 65_536;

/**
 * Keras predictions for pairs of known ids: the training features (factors, or factors plus their
 * dot product) assembled in chunks, then the network.
 */
export async function kerasPredictPairs(
  loaded: LoadedModel,
  factors: Factors,
  userIds: Int32Array,
  movieIds: Int32Array,
): Promise<Float64Array> {
  const features = loaded.manifest.details.features;
  const n = userIds.length;
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += CHUNK) {
    const count = Math.min(CHUNK, n - start);
    const userRow = new Int32Array(count);
    const movieRow = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      userRow[i] = binarySearch(factors.userIds, userIds[start + i]);
      movieRow[i] = binarySearch(factors.itemIds, movieIds[start + i]);
      if (userRow[i] < 0 || movieRow[i] < 0) throw new Error(`pair (${userIds[start + i]}, ${movieIds[start + i]}) has no factors`);
    }
    const assembler = new FeatureAssembler(features, factors, { userRow, movieRow, ratings: new Float32Array(count) });
    const rows = new Int32Array(count);
    for (let i = 0; i < count; i++) rows[i] = i;
    const x = new Float32Array(count * assembler.width);
    assembler.fill(rows, 0, count, x, undefined);
    const y = await kerasPredict(loaded, x);
    for (let i = 0; i < count; i++) out[start + i] = y[i];
  }
  return out;
}

/** A stacked network's predictions, in chunks of CHUNK pairs (bounding the feature buffer). */
async function stackedPredictPairs(
  loaded: LoadedModel,
  userIds: Int32Array,
  movieIds: Int32Array,
  timestamps: Float64Array | undefined,
): Promise<Float64Array> {
  const out = new Float64Array(userIds.length);
  for (let start = 0; start < userIds.length; start += CHUNK) {
    const end = Math.min(userIds.length, start + CHUNK);
    const at = timestamps?.subarray(start, end);
    out.set(await predictStackedPairs(loaded, userIds.subarray(start, end), movieIds.subarray(start, end), at), start);
  }
  return out;
}

/** The ALS model's dot products as a synchronous scorer (no per-call allocation). */
function alsScorer(factors: Factors, known: Pick<PairScorer, "hasUser" | "hasMovie">): PairScorer {
  const { rank, userFactors, itemFactors } = factors;
  return {
    ...known,
    score(userIds, movieIds, out) {
      for (let i = 0; i < userIds.length; i++) {
        const u = binarySearch(factors.userIds, userIds[i]) * rank;
        const m = binarySearch(factors.itemIds, movieIds[i]) * rank;
        if (u < 0 || m < 0) throw new Error(`pair (${userIds[i]}, ${movieIds[i]}) has no factors`);
        let s = 0;
        for (let f = 0; f < rank; f++) s += userFactors[u + f] * itemFactors[m + f];
        out[i] = s;
      }
    },
  };
}

/**
 * Loads the model of `kind` from a run's entries. `check` sees the ids known to the factors before
 * a network is loaded (an unknown id fails without loading TensorFlow.js).
 */
export async function openModel(
  kind: ModelKind,
  dirs: ModelDirs,
  options: {
    backend?: BackendChoice;
    check?: (known: Pick<ServedModel, "kind" | "userIds" | "movieIds" | "hasUser" | "hasMovie">) => void;
    factors?: Factors;
  } = {},
): Promise<ServedModel> {
  // A caller opening both models of a run passes the factors it already read (one Parquet read, not two).
  const factors = options.factors ?? (await readFactors(dirs.factors));
  const base = {
    factors,
    userIds: factors.userIds,
    movieIds: factors.itemIds,
    hasUser: (id: number) => binarySearch(factors.userIds, id) >= 0,
    hasMovie: (id: number) => binarySearch(factors.itemIds, id) >= 0,
  };
  options.check?.({ kind, ...base });
  if (kind === "als") {
    return {
      kind,
      dir: dirs.factors,
      manifest: factors.manifest,
      ...base,
      predict: async (u, m) => predictWith(factors, u, m),
      scorer: alsScorer(factors, base),
      dispose: () => undefined,
    };
  }
  if (!dirs.model) throw new Error("no keras model directory given");
  const { features, servable } = await kerasServing(dirs.model);
  if (!servable) throw new UnservableModelError(dirs.model, features);
  const loaded = await loadModel(dirs.model, { backend: options.backend ?? "auto" });
  const trainedOn = loaded.manifest.details.factors?.digest;
  if (trainedOn !== factors.manifest.digest) {
    loaded.model.dispose();
    throw new CorruptArtifactError(
      `${dirs.model}: the model was trained on factors ${String(trainedOn)}, not on ${factors.manifest.digest} (${dirs.factors})`,
    );
  }
  return {
    kind,
    dir: dirs.model,
    manifest: loaded.manifest,
    ...base,
    predict: (u, m, t) => (loaded.stacked ? stackedPredictPairs(loaded, u, m, t) : kerasPredictPairs(loaded, factors, u, m)),
    scorer: pairScorer(loaded, factors),
    dispose: () => loaded.model.dispose(),
  };
}

/** A predicted rating as published: 4 decimals, never NaN or Infinity (a model that gives one is damaged). */
export function publishedRating(value: number, model: Pick<ServedModel, "kind" | "dir">): number {
  if (!Number.isFinite(value)) throw new CorruptArtifactError(`${model.dir}: the ${model.kind} model predicted ${value}`);
  return Number(value.toFixed(4));
}
