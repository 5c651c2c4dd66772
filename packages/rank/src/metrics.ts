/**
 * Ranking metrics of top-k lists, as Microsoft Recommenders' `python_evaluation` defines them
 * (`precision_at_k`, `recall_at_k`, `ndcg_at_k`, `map_at_k` with `relevancy_method="top_k"`),
 * in the variant every ranking evaluation of ms uses:
 *
 * - **binary relevance**: an item is relevant to a user when it is one of the user's test items
 *   (default), or, with a threshold, one of the user's test items rated at least that
 *   (`rank_min_rating`). Relevance never depends on the rating's size beyond that.
 * - **users evaluated**: the users with at least one relevant test item; a user without one is
 *   skipped (it adds to no sum and to no count). Each evaluated user gets a list (possibly shorter
 *   than k, e.g. when fewer candidates exist); every mean is over the evaluated users.
 * - precision@k = hits / k (k, not the list's length: Spark's and their convention);
 * - recall@k = hits / |relevant|;
 * - nDCG@k = DCG / IDCG with DCG = sum over hit ranks r (1-based) of 1 / ln(1 + r) and the ideal
 *   DCG over the first min(k, |relevant|) ranks (the log base cancels);
 * - MAP@k (their `map_at_k`) = (sum over hits of (hits so far) / rank) / min(k, |relevant|);
 * - hit rate@k = share of users with at least one hit;
 * - catalog coverage = distinct items in any list / items in the training part;
 * - popularity bias = mean training count of the recommended items (over every list position).
 *
 * The accumulator takes one user at a time, so an evaluation over many users never holds every
 * list; `rankingMetrics` is the one-shot form for tests and small inputs.
 */

export interface RankingMetrics {
  k: number;
  precision: number;
  recall: number;
  ndcg: number;
  map: number;
  hitRate: number;
  coverage: number;
  popularityBias: number;
  /** Users with at least one relevant test item (the denominators of every mean). */
  users: number;
}

export interface RankingAccumulatorOptions {
  k: number;
  /** Items in the training part (the coverage denominator). */
  catalogSize: number;
  /** The training count of an item id (for the popularity bias); absent: the bias is 0. */
  trainCount?: (itemId: number) => number;
}

/** 1 / ln(1 + r) for r = 1..k: the discount of each rank, and its prefix sums (the ideal DCG). */
function discounts(k: number): { discount: Float64Array; ideal: Float64Array } {
  const discount = new Float64Array(k + 1);
  const ideal = new Float64Array(k + 1);
  for (let r = 1; r <= k; r++) {
    discount[r] = 1 / Math.log(1 + r);
    ideal[r] = ideal[r - 1] + discount[r];
  }
  return { discount, ideal };
}

/** Adds users one at a time; `result()` gives the means over the users with a relevant item. */
export class RankingAccumulator {
  readonly k: number;
  private readonly catalogSize: number;
  private readonly trainCount?: (itemId: number) => number;
  private readonly discount: Float64Array;
  private readonly ideal: Float64Array;
  private readonly seen = new Set<number>();
  private sums = { precision: 0, recall: 0, ndcg: 0, map: 0, hits: 0, popularity: 0, positions: 0 };
  private users = 0;
  // Kept per user because a mean alone cannot say whether two models differ beyond noise (select.ts's rule).
  private readonly ndcgs: number[] = [];

  constructor(options: RankingAccumulatorOptions) {
    if (!Number.isInteger(options.k) || options.k < 1) throw new RangeError(`k must be a positive integer, got ${options.k}`);
    if (!Number.isInteger(options.catalogSize) || options.catalogSize < 0)
      throw new RangeError(`catalogSize must be a count, got ${options.catalogSize}`);
    this.k = options.k;
    this.catalogSize = options.catalogSize;
    this.trainCount = options.trainCount;
    const { discount, ideal } = discounts(options.k);
    this.discount = discount;
    this.ideal = ideal;
  }

  /**
   * One user's list (best first; only its first k count) and relevant items. A user with no
   * relevant item is skipped; the return says whether the user was evaluated.
   */
  add(recommended: ArrayLike<number>, relevant: ReadonlySet<number>): boolean {
    if (relevant.size === 0) return false;
    const n = Math.min(this.k, recommended.length);
    let hits = 0;
    let dcg = 0;
    let ap = 0;
    for (let r = 1; r <= n; r++) {
      const item = recommended[r - 1];
      this.seen.add(item);
      if (this.trainCount) this.sums.popularity += this.trainCount(item);
      if (!relevant.has(item)) continue;
      hits++;
      dcg += this.discount[r];
      ap += hits / r;
    }
    const best = Math.min(this.k, relevant.size);
    this.sums.positions += n;
    this.sums.precision += hits / this.k;
    this.sums.recall += hits / relevant.size;
    this.sums.ndcg += dcg / this.ideal[best];
    this.ndcgs.push(dcg / this.ideal[best]);
    this.sums.map += ap / best;
    if (hits > 0) this.sums.hits++;
    this.users++;
    return true;
  }

  /** Each evaluated user's nDCG@k, in the order they were added. */
  userNdcg(): Float64Array {
    return Float64Array.from(this.ndcgs);
  }

  result(): RankingMetrics {
    const u = this.users;
    const mean = (x: number) => (u > 0 ? x / u : 0);
    return {
      k: this.k,
      precision: mean(this.sums.precision),
      recall: mean(this.sums.recall),
      ndcg: mean(this.sums.ndcg),
      map: mean(this.sums.map),
      hitRate: mean(this.sums.hits),
      coverage: this.catalogSize > 0 ? this.seen.size / this.catalogSize : 0,
      popularityBias: this.sums.positions > 0 ? this.sums.popularity / this.sums.positions : 0,
      users: u,
    };
  }
}

/** One user's evaluation input. */
export interface UserLists {
  recommended: ArrayLike<number>;
  relevant: ReadonlySet<number>;
}

/** The metrics of many users' lists at once (see RankingAccumulator). */
export function rankingMetrics(users: Iterable<UserLists>, options: RankingAccumulatorOptions): RankingMetrics {
  const acc = new RankingAccumulator(options);
  for (const u of users) acc.add(u.recommended, u.relevant);
  return acc.result();
}

/**
 * The metrics as a step publishes them, k in the name (`ndcg_at_10`), with an optional prefix
 * (`popularity_ndcg_at_10`); `eval_users` is the number of users evaluated.
 */
export function rankingMetricsRecord(m: RankingMetrics, prefix = ""): Record<string, number> {
  const at = `_at_${m.k}`;
  return {
    [`${prefix}ndcg${at}`]: m.ndcg,
    [`${prefix}precision${at}`]: m.precision,
    [`${prefix}recall${at}`]: m.recall,
    [`${prefix}map${at}`]: m.map,
    [`${prefix}hit_rate${at}`]: m.hitRate,
    [`${prefix}coverage${at}`]: m.coverage,
    [`${prefix}popularity_bias${at}`]: m.popularityBias,
    [`${prefix}eval_users`]: m.users,
  };
}
