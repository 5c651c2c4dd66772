/**
 * The network's inputs, built from typed arrays only: ratings are joined once to factor row
 * numbers, split with the evaluation split the als step recorded, and each batch is assembled on demand into a buffer
 * the caller owns. The full feature matrix (rows x 2*rank floats) never exists in memory.
 */
import { ColdStartRule, mulberry32, splitMaskOf, type SplitSpec } from "@ms/contracts";

/** The factor matrices the features come from (what `readFactors` of @ms/als returns, structurally). */
export interface FactorMatrices {
  rank: number;
  userIds: Int32Array;
  userFactors: Float32Array;
  itemIds: Int32Array;
  itemFactors: Float32Array;
}

/** Ratings as typed columns (what `readRatingsColumns` of @ms/etl returns). */
export interface RatingColumns {
  rows: number;
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
  /** etl's split_key, for a keyed evaluation split (time, file). */
  splitKey?: Float32Array;
}

/**
 * Which inputs the network sees. `factors` (alias `seed`) is the seed's: movie factors then user
 * factors. `factors+dot` appends the ALS prediction (the dot product of the two factor vectors),
 * which the seed's network otherwise has to rediscover from 2*rank numbers with a few thousand
 * steps. `stacked` (the default) is out-of-fold features (see @ms/fm `outOfFoldFeatures`): a
 * Bayesian factor model's prediction, biases, rating counts and an implicit-feedback signal, each
 * computed by a fit that did not see the rating, so training rows look like test rows.
 */
export const FEATURE_SETS = ["stacked", "seed", "factors", "factors+dot"] as const;
export type FeatureSet = (typeof FEATURE_SETS)[number];

/** Width of the input; `stackedWidth` is the out-of-fold feature count (taken from the data). */
export function featureWidth(set: FeatureSet, rank: number, stackedWidth = 0): number {
  if (set === "stacked") return stackedWidth;
  return set === "factors+dot" ? 2 * rank + 1 : 2 * rank;
}

/** Per-rating features computed elsewhere: `width` values per row of the ratings, in file order. */
export interface RowFeatures {
  width: number;
  values: Float32Array;
}

/** Ratings joined to factor rows, split into training and test, in file order. */
export interface JoinedRatings {
  /** Factor row of each kept rating's movie / user, and its rating. */
  movieRow: Int32Array;
  userRow: Int32Array;
  ratings: Float32Array;
  /** Row of each kept rating in the ratings given (for per-row features). */
  source: Int32Array;
  /** Indices into the kept arrays: the training part and the test part, each in file order. */
  trainRows: Int32Array;
  testRows: Int32Array;
  /** Ratings dropped because their user or movie has no factors, per side of the split. */
  droppedTrain: number;
  droppedTest: number;
}

/**
 * Id -> row lookup for ids sorted ascending. A dense table when the id range is small (MovieLens
 * ids are below 300k), binary search otherwise, so odd ids never cost gigabytes.
 */
export function makeIdIndex(ids: Int32Array): (id: number) => number {
  const n = ids.length;
  if (n === 0) return () => -1;
  const min = ids[0];
  const max = ids[n - 1];
  const span = max - min + 1;
  if (min >= 0 && span <= Math.max(1 << 22, 4 * n)) {
    const table = new Int32Array(span).fill(-1);
    for (let i = 0; i < n; i++) table[ids[i] - min] = i;
    return (id) => (id < min || id > max ? -1 : table[id - min]);
  }
  return (id) => {
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = ids[mid];
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  };
}

/** Joins ratings to factor rows and applies the shared split (the spec in the als manifest). */
export function joinRatings(ratings: RatingColumns, factors: FactorMatrices, split: SplitSpec): JoinedRatings {
  const n = ratings.rows;
  const mask = splitMaskOf(split, ratings);
  const userIndex = makeIdIndex(factors.userIds);
  const itemIndex = makeIdIndex(factors.itemIds);
  const movieRow = new Int32Array(n);
  const userRow = new Int32Array(n);
  const kept = new Float32Array(n);
  const source = new Int32Array(n);
  let k = 0;
  let nTrain = 0;
  let droppedTrain = 0;
  let droppedTest = 0;
  for (let i = 0; i < n; i++) {
    const m = itemIndex(ratings.movieIds[i]);
    const u = userIndex(ratings.userIds[i]);
    if (m < 0 || u < 0) {
      if (mask[i] === 1) droppedTrain++;
      else droppedTest++;
      continue;
    }
    movieRow[k] = m;
    userRow[k] = u;
    kept[k] = ratings.ratings[i];
    source[k] = i;
    mask[k] = mask[i];
    nTrain += mask[i];
    k++;
  }
  const trainRows = new Int32Array(nTrain);
  const testRows = new Int32Array(k - nTrain);
  for (let i = 0, a = 0, b = 0; i < k; i++) {
    if (mask[i] === 1) trainRows[a++] = i;
    else testRows[b++] = i;
  }
  return {
    movieRow: movieRow.slice(0, k),
    userRow: userRow.slice(0, k),
    ratings: kept.slice(0, k),
    source: source.slice(0, k),
    trainRows,
    testRows,
    droppedTrain,
    droppedTest,
  };
}

/**
 * Splits the training rows into fit and validation rows the way Keras' `validation_split` does:
 * the last `fraction` of the rows, in order (Keras takes `x[int(n * (1 - fraction)):]`).
 */
export function validationTail(trainRows: Int32Array, fraction: number): { fitRows: Int32Array; valRows: Int32Array } {
  const splitAt = Math.trunc(trainRows.length * (1 - fraction));
  return { fitRows: trainRows.subarray(0, splitAt), valRows: trainRows.subarray(splitAt) };
}

/** Writes the features and targets of `rows[start, start+count)` into `x` (count*width) and `y`. */
export class FeatureAssembler {
  readonly width: number;
  readonly rank: number;

  constructor(
    readonly set: FeatureSet,
    private readonly factors: FactorMatrices,
    private readonly joined: Pick<JoinedRatings, "movieRow" | "userRow" | "ratings"> & { source?: Int32Array },
    private readonly rowFeatures?: RowFeatures,
  ) {
    if (set === "stacked" && (!rowFeatures || !joined.source))
      throw new Error("the stacked feature set needs per-row features and the joined rows' sources");
    this.rank = factors.rank;
    this.width = featureWidth(set, factors.rank, rowFeatures?.width ?? 0);
  }

  fill(rows: Int32Array, start: number, count: number, x: Float32Array, y: Float32Array | undefined): void {
    if (this.set === "stacked") {
      this.fillRowFeatures(rows, start, count, x, y);
      return;
    }
    const { rank, width } = this;
    const items = this.factors.itemFactors;
    const users = this.factors.userFactors;
    const { movieRow, userRow, ratings } = this.joined;
    const dot = this.set === "factors+dot";
    for (let b = 0; b < count; b++) {
      const r = rows[start + b];
      const mo = movieRow[r] * rank;
      const uo = userRow[r] * rank;
      const o = b * width;
      let s = 0;
      for (let j = 0; j < rank; j++) {
        const mv = items[mo + j];
        const uv = users[uo + j];
        x[o + j] = mv;
        x[o + rank + j] = uv;
        s += mv * uv;
      }
      if (dot) x[o + 2 * rank] = s;
      if (y) y[b] = ratings[r];
    }
  }

  private fillRowFeatures(rows: Int32Array, start: number, count: number, x: Float32Array, y: Float32Array | undefined): void {
    const { width } = this;
    const { values } = this.rowFeatures as RowFeatures;
    const source = this.joined.source as Int32Array;
    const { ratings } = this.joined;
    for (let b = 0; b < count; b++) {
      const r = rows[start + b];
      const from = source[r] * width;
      const o = b * width;
      for (let j = 0; j < width; j++) x[o + j] = values[from + j];
      if (y) y[b] = ratings[r];
    }
  }
}

/** The project's seeded generator (shuffles must repeat exactly for a given seed), re-exported for the network. */
export { mulberry32 };

/** Fisher-Yates in place. */
export function shuffleInPlace(a: Int32Array, random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/**
 * The squared errors of the test rows that have no factors, scored by @ms/contracts' cold-start
 * rule (the training mean plus the known side's bias): with split=file they count in the test error.
 */
export function coldTestErrors(ratings: RatingColumns, factors: FactorMatrices, split: SplitSpec): { rows: number; sse: number } {
  const mask = splitMaskOf(split, ratings);
  const rule = new ColdStartRule(ratings, mask);
  const userIndex = makeIdIndex(factors.userIds);
  const itemIndex = makeIdIndex(factors.itemIds);
  let rows = 0;
  let sse = 0;
  for (let i = 0; i < ratings.rows; i++) {
    if (mask[i] !== 0 || (userIndex(ratings.userIds[i]) >= 0 && itemIndex(ratings.movieIds[i]) >= 0)) continue;
    const e = rule.predict(ratings.userIds[i], ratings.movieIds[i]) - ratings.ratings[i];
    sse += e * e;
    rows++;
  }
  return { rows, sse };
}
