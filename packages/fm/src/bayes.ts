/**
 * Bayesian factorisation with biases, implicit feedback and time effects, fitted by Gibbs sampling
 * (the model of a factorisation machine over user and movie ids with myFM's relation blocks):
 *   r = mu + b_u + b_i + [time: b_bin(t) + b_{i,bin(t)} + b_{u,day(t)}]
 *         + (p_u + Y_u) . (q_i + Z_i) + noise,
 *   Y_u = |N(u)|^-1/2 sum_{j in N(u)} y_j (implicitUser), Z_i = |U(i)|^-1/2 sum_{v in U(i)} z_v (implicitMovie),
 * N(u) / U(i) being the movies u rated / the users who rated i in this fit's training rows.
 * [b_u, p_u] given the rest is Gaussian with the shape of an ALS row solve: a (rank+1)-dim system
 * over the design [1, q_i + Z_i] and the targets r - mu - b_i - time - Y_u.(q_i + Z_i), solved by
 * Cholesky plus a draw through the same factor; movies likewise over [1, p_u + Y_u]. y and z are
 * drawn coordinate-wise by the relation-block trick (relation.ts), the time groups as bias groups
 * (timebias.ts). Every group has its own Normal-Gamma / Gamma prior; the noise precision is drawn
 * from its Gamma conditional. Predictions are averaged over the samples after burn-in; with
 * validation rows, the number of samples is chosen by their running error (stopping.ts). One
 * thread, seeded by the project's generator: a seed gives the same numbers on every run.
 */
import { BadParameterError, InterruptedError, MsError, mixSeed, mulberry32 } from "@ms/contracts";
import { kernels } from "@ms/als";
import { drawHyper, Normal, RowConditional } from "./gaussian.js";
import { groupBy, Relation, rowCounts, type Side } from "./relation.js";
import { ValidationStop, type ValidationRows } from "./stopping.js";
import { TimeEffects, type TimeIndex, type TimeTables } from "./timebias.js";
import { Ordinal, type OrdinalTables } from "./ordinal.js";

const { accumulatorFor } = kernels;

/** The model's optional groups (all off by default: plain BPMF with biases). */
export interface GibbsFeatures {
  /** SVD++'s implicit user vector Y_u. */
  implicitUser?: boolean;
  /** The flipped side: the implicit movie vector Z_i. */
  implicitMovie?: boolean;
  /** Time-bin, movie x time-bin and user-day biases (needs `GibbsData.timestamps`). */
  time?: boolean;
  /** Ordinal (probit) output over the ratings' distinct values (ordinal.ts); predictions are expected ratings. */
  ordinal?: boolean;
}

export interface GibbsOptions {
  rank: number;
  /** Sweeps in all, or the cap when `validation` is given (each draws every group once). */
  samples: number;
  /** Sweeps discarded before predictions are averaged. */
  burnIn: number;
  seed: number;
  features?: GibbsFeatures;
  /** Held-out rows whose running error chooses the number of samples (see stopping.ts). */
  validation?: ValidationRows;
  signal?: AbortSignal;
}

/** Ratings with users and movies already mapped to dense indices. */
export interface GibbsData {
  userIdx: Int32Array;
  itemIdx: Int32Array;
  ratings: Float32Array;
  /** Seconds since the epoch, per rating (needed by the time features only). */
  timestamps?: ArrayLike<number>;
  nUsers: number;
  nItems: number;
}

export interface GibbsFit {
  /** Posterior-mean prediction of every query row, in the order given. */
  predictions: Float64Array;
  /** The global mean the model is centred on (the training mean). */
  mu: number;
  /**
   * Posterior means per user / movie, row-major (rank+1 values: the bias, then the effective
   * factors p_u + Y_u / q_i + Z_i, which is what a pair's product uses).
   */
  userMean: Float64Array;
  itemMean: Float64Array;
  /** Training ratings per user / movie in this fit. */
  userCount: Int32Array;
  itemCount: Int32Array;
  /** The time effects' posterior means (with `features.time`). */
  time?: TimeTables;
  /** The ordinal output's levels and posterior-mean cut-points (with `features.ordinal`; mu is then 0). */
  ordinal?: OrdinalTables;
  /** Sweeps run, burn-in included (= samples unless validation stopped earlier). */
  samplesUsed: number;
  /** The validation RMSE at each check (empty without validation). */
  validationRmse: number[];
}

/** Aborts between sweeps and lets the event loop run, so signal handlers are heard during a long fit. */
async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (signal?.aborted) throw signal.reason instanceof MsError ? signal.reason : new InterruptedError("bayes: sampling interrupted");
}

/**
 * Samples the model on `trainRows` and returns the posterior-mean predictions of `queryRows`
 * (indices into `data`), with the posterior means of the biases and factors.
 */
export async function gibbsFit(data: GibbsData, trainRows: Int32Array, queryRows: Int32Array, options: GibbsOptions): Promise<GibbsFit> {
  const s = new Sampler(data, trainRows, options);
  const queryTime = s.time && s.locate(data.userIdx, data.itemIdx, data.timestamps, queryRows);
  const v = options.validation;
  const stop = v ? new ValidationStop(v) : undefined;
  const validationTime = v && s.time && s.locate(v.userIdx, v.itemIdx, v.timestamps, undefined, "validation");
  const predictions = new Float64Array(queryRows.length);
  const userMean = new Float64Array(s.U.length);
  const itemMean = new Float64Array(s.V.length);
  let kept = 0;
  let used = 0;
  while (used < options.samples) {
    s.sweep();
    used++;
    if (used > options.burnIn) {
      kept++;
      for (let k = 0; k < queryRows.length; k++) {
        const i = queryRows[k];
        predictions[k] += s.rating(s.predict(data.userIdx[i], data.itemIdx[i], queryTime, k));
      }
      s.addMeans(userMean, itemMean);
      const stopped = v && stop?.add((k) => s.rating(s.predict(v.userIdx[k], v.itemIdx[k], validationTime, k)));
      if (stopped) break;
    }
    await checkpoint(options.signal);
  }
  const scale = 1 / Math.max(1, kept);
  for (const sums of [predictions, userMean, itemMean]) for (let i = 0; i < sums.length; i++) sums[i] *= scale;
  return {
    predictions,
    mu: s.mu,
    userMean,
    itemMean,
    userCount: rowCounts(s.byUser),
    itemCount: rowCounts(s.byItem),
    time: s.time?.tables(kept),
    ordinal: s.ordinal?.tables(kept),
    samplesUsed: used,
    validationRmse: stop?.history ?? [],
  };
}

/** The state of one chain: every group's current values and priors, and one sweep over them. */
class Sampler {
  readonly K: number;
  readonly mu: number;
  readonly byUser: Side;
  readonly byItem: Side;
  /** [bias, factors] per user / movie. */
  readonly U: Float64Array;
  readonly V: Float64Array;
  /** Effective factors p_u + Y_u and q_i + Z_i (rank per row). */
  private readonly Pe: Float64Array;
  private readonly Qe: Float64Array;
  private readonly yRel?: Relation;
  private readonly zRel?: Relation;
  readonly time?: TimeEffects;
  readonly ordinal?: Ordinal;
  /** What the model's part is fitted to, by rating row: the rating, or (ordinal) its latent value. */
  private readonly target: Float64Array;
  private readonly lamU: Float64Array;
  private readonly lamV: Float64Array;
  private readonly meanU: Float64Array;
  private readonly meanV: Float64Array;
  private alpha = 1;
  private readonly normal: Normal;
  private readonly conditional: RowConditional;
  private readonly accumulate: ReturnType<typeof accumulatorFor>;
  private readonly design: Float32Array;
  /** Residual r - prediction, by rating row (training rows only). */
  private readonly e: Float64Array;
  /** The time part of each training rating, by rating row. */
  private readonly timeScratch: Float64Array;

  constructor(
    readonly data: GibbsData,
    readonly trainRows: Int32Array,
    options: GibbsOptions,
  ) {
    const f = options.features ?? {};
    if (f.time && !data.timestamps) throw new BadParameterError("time", "the time features need the ratings' timestamps");
    const { nUsers, nItems, userIdx, itemIdx, ratings } = data;
    const rank = options.rank;
    this.K = rank + 1;
    this.normal = new Normal(mulberry32(mixSeed(options.seed, 0x6a77)));
    this.byUser = groupBy(userIdx, itemIdx, trainRows, nUsers);
    this.byItem = groupBy(itemIdx, userIdx, trainRows, nItems);
    let sum = 0;
    for (let k = 0; k < trainRows.length; k++) sum += ratings[trainRows[k]];
    // The ordinal model's cut-points carry the location.
    this.mu = trainRows.length > 0 && !f.ordinal ? sum / trainRows.length : 0;
    if (f.ordinal) this.ordinal = new Ordinal(ratings, trainRows);
    this.target = Float64Array.from(ratings);
    this.U = initialFactors(nUsers, this.K, this.normal);
    this.V = initialFactors(nItems, this.K, this.normal);
    this.Pe = new Float64Array(nUsers * rank);
    this.Qe = new Float64Array(nItems * rank);
    this.lamU = new Float64Array(this.K).fill(1);
    this.lamV = new Float64Array(this.K).fill(1);
    this.meanU = new Float64Array(this.K);
    this.meanV = new Float64Array(this.K);
    if (f.implicitUser) this.yRel = new Relation(this.byUser, this.byItem, rank);
    if (f.implicitMovie) this.zRel = new Relation(this.byItem, this.byUser, rank);
    if (f.time && data.timestamps) this.time = new TimeEffects(data.timestamps, userIdx, itemIdx, trainRows, nItems);
    this.conditional = new RowConditional(this.K, this.normal);
    this.accumulate = accumulatorFor(this.K);
    this.design = new Float32Array(Math.max(nUsers, nItems) * this.K);
    this.e = new Float64Array(ratings.length);
    this.timeScratch = new Float64Array(this.time ? ratings.length : 0);
    this.effective(this.U, this.yRel, this.Pe);
    this.effective(this.V, this.zRel, this.Qe);
  }

  /** Locates rows for the time effects; a missing timestamp column is a BadParameterError naming `what`. */
  locate(
    userIdx: Int32Array,
    itemIdx: Int32Array,
    timestamps: ArrayLike<number> | undefined,
    rows?: Int32Array,
    what = "query",
  ): TimeIndex {
    if (!this.time) throw new BadParameterError("time", "the fit has no time effects");
    if (!timestamps) throw new BadParameterError("time", `the ${what} rows need timestamps`);
    return this.time.locate(userIdx, itemIdx, timestamps, rows);
  }

  /** One sweep: priors, users, movies, implicit blocks, time groups, then the noise precision. */
  sweep(): void {
    const { K, normal, data } = this;
    drawHyper(this.U, data.nUsers, K, this.lamU, this.meanU, normal);
    drawHyper(this.V, data.nItems, K, this.lamV, this.meanV, normal);
    for (const rel of [this.yRel, this.zRel]) if (rel) drawHyper(rel.W, rel.W.length / (K - 1), K - 1, rel.lam, rel.mean, normal);
    if (this.ordinal) {
      this.residuals();
      this.ordinal.sample(this.target, this.e, normal);
    }
    this.block(this.byUser, this.U, this.yRel, this.V, this.Qe, data.nItems, this.lamU, this.meanU);
    this.effective(this.U, this.yRel, this.Pe);
    this.block(this.byItem, this.V, this.zRel, this.U, this.Pe, data.nUsers, this.lamV, this.meanV);
    this.effective(this.V, this.zRel, this.Qe);
    this.residuals();
    if (this.yRel) {
      this.yRel.sample(this.Qe, this.e, this.alpha, normal);
      this.effective(this.U, this.yRel, this.Pe);
    }
    if (this.zRel) {
      this.zRel.sample(this.Pe, this.e, this.alpha, normal);
      this.effective(this.V, this.zRel, this.Qe);
    }
    this.time?.sample(this.e, this.alpha, normal);
    let sse = 0;
    for (let k = 0; k < this.trainRows.length; k++) sse += this.e[this.trainRows[k]] ** 2;
    // The probit's latent noise has precision 1 by definition.
    if (!this.ordinal) this.alpha = normal.gamma(1 + this.trainRows.length / 2) / (1 + sse / 2);
  }

  /**
   * Draws every row of X ([bias, factors] of one side) given the other side: design [1, Oe_o],
   * target r - mu - b_o - time - own implicit sum . Oe_o.
   */
  private block(
    side: Side,
    X: Float64Array,
    rel: Relation | undefined,
    O: Float64Array,
    Oe: Float64Array,
    nOther: number,
    lam: Float64Array,
    mean: Float64Array,
  ): void {
    const { K, design, conditional, trainTime } = this;
    const rank = K - 1;
    const { ptr, other, row, val } = side;
    for (let r = 0; r < nOther; r++) {
      design[r * K] = 1;
      for (let f = 0; f < rank; f++) design[r * K + 1 + f] = Oe[r * rank + f];
    }
    const n = ptr.length - 1;
    for (let r = 0; r < n; r++) {
      for (let p = ptr[r]; p < ptr[r + 1]; p++) {
        const i = row[p];
        const o = other[p];
        let t = this.target[i] - this.mu - O[o * K] - (trainTime ? trainTime[i] : 0);
        if (rel) for (let f = 0; f < rank; f++) t -= rel.sum[r * rank + f] * Oe[o * rank + f];
        val[p] = t;
      }
      this.accumulate(other, val, design, ptr[r], ptr[r + 1], conditional.P, conditional.b);
      conditional.draw(this.alpha, lam, mean, X, r * K);
    }
  }

  /** The time part of each training rating, by rating row (undefined without time effects). */
  private get trainTime(): Float64Array | undefined {
    const t = this.time;
    if (!t) return undefined;
    const out = this.timeScratch;
    for (let k = 0; k < this.trainRows.length; k++) out[this.trainRows[k]] = t.bias(t.train, k);
    return out;
  }

  /** Writes the effective factors (X's factors plus the relation's owner sums) into E. */
  private effective(X: Float64Array, rel: Relation | undefined, E: Float64Array): void {
    const { K } = this;
    const rank = K - 1;
    const n = E.length / rank;
    for (let r = 0; r < n; r++) for (let f = 0; f < rank; f++) E[r * rank + f] = X[r * K + 1 + f] + (rel ? rel.sum[r * rank + f] : 0);
  }

  /** e = r - prediction over the training rows. */
  private residuals(): void {
    const { data, trainRows, time } = this;
    for (let k = 0; k < trainRows.length; k++) {
      const i = trainRows[k];
      this.e[i] = this.target[i] - this.predict(data.userIdx[i], data.itemIdx[i], time?.train, k);
    }
  }

  /** The current prediction of (user u, movie m), the k-th row of `at` for the time effects. */
  predict(u: number, m: number, at: TimeIndex | undefined, k: number): number {
    const { K, Pe, Qe } = this;
    const rank = K - 1;
    let s = this.mu + this.U[u * K] + this.V[m * K];
    if (this.time && at) s += this.time.bias(at, k);
    for (let f = 0; f < rank; f++) s += Pe[u * rank + f] * Qe[m * rank + f];
    return s;
  }

  /** A prediction of the model's part as a rating (ordinal: the expected rating). */
  rating(f: number): number {
    return this.ordinal ? this.ordinal.expected(f) : f;
  }

  /** Adds the current [bias, effective factors] per user / movie into the posterior-mean sums. */
  addMeans(userMean: Float64Array, itemMean: Float64Array): void {
    const { K, U, V, Pe, Qe } = this;
    const rank = K - 1;
    for (const [sums, X, E] of [
      [userMean, U, Pe],
      [itemMean, V, Qe],
    ] as const) {
      const n = X.length / K;
      for (let r = 0; r < n; r++) {
        sums[r * K] += X[r * K];
        for (let f = 0; f < rank; f++) sums[r * K + 1 + f] += E[r * rank + f];
      }
    }
    this.time?.keep();
    this.ordinal?.keep();
  }
}

/** `n` rows of a zero bias and small normal factors, drawn in row-major order. */
function initialFactors(n: number, K: number, normal: Normal): Float64Array {
  const X = new Float64Array(n * K);
  for (let i = 0; i < X.length; i++) X[i] = i % K === 0 ? 0 : 0.1 * normal.next();
  return X;
}

/**
 * A fit's options in the out-of-fold scheme (fit `f`; the folds' fits come first): without
 * `maxSamples` every fit runs `samples` sweeps; with it a fold fit stops by the error of its own
 * held-out rows `foldRows` (capped at maxSamples), and the full fit runs the max (or mean) count
 * the folds used, or ("first") the first fold's, which it can start on before the others end.
 * Those rows are out of the fold's fit, so this costs no training data; their ratings choose one
 * number per fold (where it stops), which is all they say about their own features.
 */
export function fitOptions(
  o: {
    rank: number;
    samples: number;
    burnIn: number;
    seed: number;
    features?: GibbsFeatures;
    maxSamples?: number;
    fullSamples?: "max" | "mean" | "first";
    signal?: AbortSignal;
  },
  data: GibbsData,
  foldRows: Int32Array | undefined,
  f: number,
  foldsUsed: number[],
): GibbsOptions {
  const base = {
    rank: o.rank,
    burnIn: o.burnIn,
    seed: o.seed + f,
    ...(o.features ? { features: o.features } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  if (o.maxSamples === undefined) return { ...base, samples: o.samples };
  if (foldRows) return { ...base, samples: o.maxSamples, validation: validationRows(data, foldRows) };
  const count =
    o.fullSamples === "mean"
      ? Math.round(foldsUsed.reduce((a, b) => a + b, 0) / Math.max(1, foldsUsed.length))
      : o.fullSamples === "first"
        ? (foldsUsed[0] ?? o.burnIn + 1)
        : Math.max(o.burnIn + 1, ...foldsUsed);
  return { ...base, samples: Math.max(o.burnIn + 1, count) };
}

/** `rows` of `data` as validation rows. */
export function validationRows(data: GibbsData, rows: Int32Array): ValidationRows {
  const ts = data.timestamps;
  return {
    userIdx: Int32Array.from(rows, (i) => data.userIdx[i]),
    itemIdx: Int32Array.from(rows, (i) => data.itemIdx[i]),
    ratings: Float32Array.from(rows, (i) => data.ratings[i]),
    ...(ts ? { timestamps: Float64Array.from(rows, (i) => ts[i]) } : {}),
  };
}
