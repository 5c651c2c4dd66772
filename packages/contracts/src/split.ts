/**
 * The evaluation protocols (train/test splits) shared by every step, declared once. `hash`: a
 * rating trains when `splitHash(user, movie, seed) < split_prop`. `kfold`: with the same hash h,
 * fold(h) = floor(h * folds) + 1 and the test part is the ratings of fold `fold`, so the folds
 * partition the data (Surprise's KFold). `time` and `file`: a rating's side is not a function of
 * (user, movie), so etl writes a `split_key` column in [0, 1] (time: (rank by time in its user's
 * ratings + 0.5) / count; file: 0 for the main file, 1 for the test file) and a rating trains when
 * split_key < split_prop. The side never depends on row order, partitioning or thread count; the
 * spec is recorded in the als manifest, so every later step agrees on it.
 */
import * as v from "valibot";
import { BadParameterError } from "./errors.js";
import { param, type ParamDefs } from "./params.js";

/** murmur3's 32-bit finaliser: a full-avalanche mix of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform number in [0, 1) determined by (userId, movieId, seed). */
export function splitHash(userId: number, movieId: number, seed: number): number {
  let h = fmix32(Math.imul(seed | 0, 0x9e3779b1) ^ 0x5bd1e995);
  h = fmix32(h ^ (userId | 0));
  h = fmix32(h ^ Math.imul(movieId | 0, 0xcc9e2d51));
  return h / 4294967296;
}

/** True when the rating belongs to the training part of the hash split (the first `splitProp` of the hash range). */
export function isTraining(userId: number, movieId: number, seed: number, splitProp: number): boolean {
  return splitHash(userId, movieId, seed) < splitProp;
}

/** One byte per rating of the hash split: 1 = training, 0 = test. */
export function splitMask(userIds: Int32Array, movieIds: Int32Array, seed: number, splitProp: number): Uint8Array {
  const n = userIds.length;
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = splitHash(userIds[i], movieIds[i], seed) < splitProp ? 1 : 0;
  return mask;
}

export const SPLIT_KINDS = ["hash", "file", "kfold", "time"] as const;
export type SplitKind = (typeof SPLIT_KINDS)[number];

/** The split kinds whose side etl writes as the `split_key` column. */
export const KEYED_SPLITS: readonly SplitKind[] = ["file", "time"];

/** The column etl writes for a keyed split. */
export const SPLIT_KEY_COLUMN = "split_key";

/** The parameters of the evaluation protocol, under their one `-P` name each. */
export interface SplitParams {
  split: SplitKind;
  split_prop: number;
  folds: number;
  /** With split=kfold: the test fold; unset in `ms run` means every fold in turn. */
  fold?: number;
  /** With split=file: the ratings file whose every row tests. */
  test_ratings?: string;
}

export const SPLIT_DEFAULTS = { split: "hash", split_prop: 0.8, folds: 5 } as const satisfies Partial<SplitParams>;

/** Declared here once; each step that reads the split spreads these into its params schema. */
export const splitParams: ParamDefs<SplitParams> = {
  split: param.choice(SPLIT_KINDS, {
    default: SPLIT_DEFAULTS.split,
    doc: "evaluation protocol: hash (split_prop of (user, movie) by hash), file (--test-ratings tests), kfold (folds by hash; ms run runs every fold), time (each user's latest 1 - split_prop test)",
  }),
  split_prop: param.number({
    default: SPLIT_DEFAULTS.split_prop,
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
    doc: "share of ratings in the training part with split=hash or time (keras reuses the split als made)",
  }),
  folds: param.integer({ default: SPLIT_DEFAULTS.folds, min: 2, max: 20, doc: "with split=kfold: the number of folds" }),
  fold: param.integer({
    min: 1,
    max: 20,
    defaultDoc: "ms run: every fold in turn; a step run alone needs it",
    doc: "with split=kfold: the fold (1..folds) whose ratings test",
  }),
  test_ratings: param.path({
    defaultDoc: "none",
    doc: "with split=file: a ratings file (any format etl reads) whose every rating tests; every rating of the main file trains",
  }),
};

/** The cross checks of the split's parameters (one parameter cannot say them alone). */
export function checkSplitParams<P extends Partial<SplitParams>>(p: P): P {
  if (p.split === "kfold" && p.fold === undefined)
    throw new BadParameterError("fold", "is needed with split=kfold when a step runs alone (ms run runs every fold when it is unset)");
  if (p.fold !== undefined && p.split !== undefined && p.split !== "kfold")
    throw new BadParameterError("fold", `only means something with split=kfold (split is ${p.split})`);
  if (p.fold !== undefined && p.folds !== undefined && p.fold > p.folds)
    throw new BadParameterError("fold", `must be in 1..folds (${p.folds}), got ${p.fold}`);
  return p;
}

/** The checks of a step that reads the test file: it and split=file go together. */
export function checkTestRatings<P extends Pick<SplitParams, "split" | "test_ratings">>(p: P): P {
  if (p.split === "file" && p.test_ratings === undefined)
    throw new BadParameterError("test_ratings", "is needed with split=file (--test-ratings PATH)");
  if (p.test_ratings !== undefined && p.split !== "file")
    throw new BadParameterError("test_ratings", `is read only with split=file (split is ${p.split}); add -P split=file`);
  return p;
}

/** Some of the split's parameter definitions, for a step that reads only those. */
export function pickSplitParams<K extends keyof SplitParams & string>(...names: K[]): ParamDefs<Pick<SplitParams, K>> {
  const out: Partial<Record<K, unknown>> = {};
  for (const name of names) out[name] = splitParams[name];
  return out as ParamDefs<Pick<SplitParams, K>>;
}

/** What defines a split; recorded in the als manifest so every later step reuses it exactly. */
export interface SplitSpec {
  /** Absent in manifests written before the protocols: hash. */
  kind?: SplitKind;
  seed: number;
  splitProp: number;
  folds?: number;
  fold?: number;
}

/** A recorded split spec (in a manifest), checked. */
export const SplitSpecSchema = v.object({
  kind: v.optional(v.picklist(SPLIT_KINDS)),
  seed: v.pipe(v.number(), v.integer()),
  splitProp: v.pipe(v.number(), v.gtValue(0), v.ltValue(1)),
  folds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2))),
  fold: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
}) satisfies v.GenericSchema<unknown, SplitSpec>;

/** The spec of resolved split parameters and the seed. */
export function splitSpecOf(p: SplitParams, seed: number): SplitSpec {
  const spec: SplitSpec = { kind: p.split, seed, splitProp: p.split_prop };
  if (p.split === "kfold") {
    spec.folds = p.folds;
    spec.fold = p.fold;
  }
  return spec;
}

/** fold(h) = floor(h * folds) + 1, in 1..folds. */
export function foldOf(userId: number, movieId: number, seed: number, folds: number): number {
  return Math.min(folds, Math.floor(splitHash(userId, movieId, seed) * folds) + 1);
}

/** The ratings a mask is computed over; `splitKey` is etl's column, present for a keyed split. */
export interface SplitColumns {
  userIds: Int32Array;
  movieIds: Int32Array;
  splitKey?: Float32Array;
}

/** One byte per rating: 1 = training, 0 = test; a pure function of the spec and the columns. */
export function splitMaskOf(spec: SplitSpec, cols: SplitColumns): Uint8Array {
  const kind = spec.kind ?? "hash";
  const n = cols.userIds.length;
  if (kind === "hash") return splitMask(cols.userIds, cols.movieIds, spec.seed, spec.splitProp);
  const mask = new Uint8Array(n);
  if (kind === "kfold") {
    if (spec.folds === undefined || spec.fold === undefined)
      throw new BadParameterError("fold", "split=kfold needs folds and fold (1..folds) to compute its test part");
    for (let i = 0; i < n; i++) mask[i] = foldOf(cols.userIds[i], cols.movieIds[i], spec.seed, spec.folds) === spec.fold ? 0 : 1;
    return mask;
  }
  const key = cols.splitKey;
  if (!key)
    throw new BadParameterError(
      "split",
      `split=${kind} needs the ratings' ${SPLIT_KEY_COLUMN} column, which etl writes only with -P split=${kind}; rerun etl with it`,
    );
  for (let i = 0; i < n; i++) mask[i] = key[i] < spec.splitProp ? 1 : 0;
  return mask;
}

/**
 * The time split's key: within each user, ratings ranked by (timestamp, movieId) ascending,
 * key = (rank + 0.5) / count, so key < split_prop keeps each user's earliest share for training.
 * Float32, as etl stores it, so this and etl's SQL agree bit for bit.
 */
export function timeSplitKey(userIds: Int32Array, movieIds: Int32Array, timestamps: ArrayLike<number>): Float32Array {
  const n = userIds.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => userIds[a] - userIds[b] || timestamps[a] - timestamps[b] || movieIds[a] - movieIds[b]);
  const key = new Float32Array(n);
  for (let start = 0; start < n; ) {
    let end = start;
    while (end < n && userIds[order[end]] === userIds[order[start]]) end++;
    const count = end - start;
    for (let r = 0; r < count; r++) key[order[start + r]] = (r + 0.5) / count;
    start = end;
  }
  return key;
}

/** Damping of the cold-start rule's biases (as many pseudo-ratings at the global mean). */
const MOVIE_DAMPING = 25;
const USER_DAMPING = 10;

/** A cold-start rule's numbers: the training mean and each side's damped biases, ids ascending (what `ColdStartRule.tables()` gives and `ColdStartRule.fromTables` takes). */
export interface ColdStartTables {
  mean: number;
  movieIds: Int32Array;
  movieBias: Float64Array;
  userIds: Int32Array;
  userBias: Float64Array;
}

/**
 * The cold-start rule every step scores unseen test rows with: mu + b_m + b_u, the global
 * training mean plus the known side's damped bias, clamped to [0.5, 5].
 *   b_m = sum_{r in m} (r - mu) / (25 + n_m);  b_u = sum_{r in u} (r - mu - b_m) / (10 + n_u)
 * Its numbers travel as `tables()` (the MLflow Model's data/cold-start/), and `fromTables` gives
 * back a rule that predicts the same bits.
 */
export class ColdStartRule {
  readonly mean: number;
  private readonly movieBias: DampedBias;
  private readonly userBias: DampedBias;

  constructor(cols: SplitColumns & { ratings: Float32Array }, mask: Uint8Array);
  constructor(tables: ColdStartTables);
  constructor(cols: (SplitColumns & { ratings: Float32Array }) | ColdStartTables, mask?: Uint8Array) {
    if ("userBias" in cols) {
      this.mean = cols.mean;
      this.movieBias = DampedBias.of(cols.movieIds, cols.movieBias);
      this.userBias = DampedBias.of(cols.userIds, cols.userBias);
      return;
    }
    const m = mask as Uint8Array;
    let sum = 0;
    let count = 0;
    for (let i = 0; i < m.length; i++) {
      if (m[i] !== 1) continue;
      sum += cols.ratings[i];
      count++;
    }
    const mu = count ? sum / count : 0;
    this.mean = mu;
    this.movieBias = DampedBias.fit(cols.movieIds, m, (i) => cols.ratings[i] - mu, MOVIE_DAMPING);
    this.userBias = DampedBias.fit(cols.userIds, m, (i) => cols.ratings[i] - mu - this.movieBias.of(cols.movieIds[i]), USER_DAMPING);
  }

  /** A rule from its numbers (`tables()` of another). */
  static fromTables(tables: ColdStartTables): ColdStartRule {
    return new ColdStartRule(tables);
  }

  /** The rule's numbers: the mean and, per side, the ids with training rows (ascending) and their biases. */
  tables(): ColdStartTables {
    const movies = this.movieBias.entries();
    const users = this.userBias.entries();
    return { mean: this.mean, movieIds: movies.ids, movieBias: movies.bias, userIds: users.ids, userBias: users.bias };
  }

  /** The prediction for one (user, movie) pair, either side possibly unseen. */
  predict(userId: number, movieId: number): number {
    const p = this.mean + this.movieBias.of(movieId) + this.userBias.of(userId);
    return Math.min(5, Math.max(0.5, p));
  }
}

/**
 * Per id: sum of the training rows' residuals / (damping + their count), 0 for an id without
 * training rows. Summed in row order, so the same bits whichever table holds them: a dense one
 * over [0, max id] when the ids are small (MovieLens ids are; 20M ratings take ~1 s instead of
 * ~15 s of Map updates), else a Map.
 */
class DampedBias {
  private constructor(private readonly table: { dense: Float64Array; ids: Int32Array } | Map<number, number>) {}

  /** The biases of the rows `mask` keeps. */
  static fit(ids: Int32Array, mask: Uint8Array, residual: (i: number) => number, damping: number): DampedBias {
    let max = -1;
    let min = 0;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] !== 1) continue;
      if (ids[i] > max) max = ids[i];
      if (ids[i] < min) min = ids[i];
    }
    if (min >= 0 && max < 4 * mask.length + 65_536) {
      const sums = new Float64Array(max + 1);
      const counts = new Float64Array(max + 1);
      for (let i = 0; i < mask.length; i++) {
        if (mask[i] !== 1) continue;
        sums[ids[i]] += residual(i);
        counts[ids[i]]++;
      }
      const seen: number[] = [];
      for (let id = 0; id <= max; id++) {
        if (counts[id] === 0) continue;
        sums[id] /= damping + counts[id];
        seen.push(id);
      }
      return new DampedBias({ dense: sums, ids: Int32Array.from(seen) });
    }
    const acc = new Map<number, [number, number]>();
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] !== 1) continue;
      const a = acc.get(ids[i]) ?? [0, 0];
      a[0] += residual(i);
      a[1]++;
      acc.set(ids[i], a);
    }
    return new DampedBias(new Map(Array.from(acc, ([id, [s, c]]) => [id, s / (damping + c)])));
  }

  /** A table of given biases (an id not in `ids` has bias 0). */
  static of(ids: Int32Array, bias: Float64Array): DampedBias {
    if (ids.length !== bias.length) throw new Error(`cold-start tables: ${ids.length} ids but ${bias.length} biases`);
    return new DampedBias(new Map(Array.from(ids, (id, i) => [id, bias[i]])));
  }

  /** The ids with training rows, ascending, and their biases. */
  entries(): { ids: Int32Array; bias: Float64Array } {
    const t = this.table;
    if (!(t instanceof Map)) return { ids: t.ids.slice(), bias: Float64Array.from(t.ids, (id) => t.dense[id]) };
    const ids = Int32Array.from(t.keys()).sort();
    return { ids, bias: Float64Array.from(ids, (id) => t.get(id) ?? 0) };
  }

  /** The bias of `id`, 0 when it has no training rows. */
  of(id: number): number {
    const t = this.table;
    if (t instanceof Map) return t.get(id) ?? 0;
    return id >= 0 && id < t.dense.length ? t.dense[id] : 0;
  }
}
