/**
 * Serving a fitted ranking model: a user's training items in, the top-k items out (with their
 * scores, and for EASE the reasons: the user's rated items that contributed most to each). One
 * `Ranker` keeps its scratch buffers, so `recommend` allocates only its small result and a batch
 * over every user (`recommendAll`) allocates once.
 *
 * - ease: score[j] = sum over the user's rated model items i of B[i][j] (B's kept entries);
 *   candidates are the model's items (the `rank_max_items` most rated); a user with no rated
 *   model item gets the popularity order instead (every EASE score would be 0).
 * - popularity: the training count; candidates are every training item.
 * Both exclude the user's own items (`excludeSeen`, default) and items with fewer than
 * `minRatings` training ratings; ties go to the smaller movie id.
 */
import { binarySearch } from "@ms/contracts";
import { groupByUser, positionsOf } from "./data.js";
import type { Histories, SparseRows } from "./ease.js";
import { TopKSelector, type TopKResult } from "./topk.js";

export type RankModel = "ease" | "popularity";

/** A fitted model in memory, as the artifact stores it. */
export interface RankerModel {
  model: RankModel;
  /** Every training item, ascending, and its training count. */
  itemIds: Int32Array;
  trainCounts: Int32Array;
  /** ease: positions (into itemIds) of the m model items, ascending, and B's rows over them. */
  modelItems?: Int32Array;
  rows?: SparseRows;
}

export interface RecommendOptions {
  excludeSeen?: boolean;
  /** A floor on the item's training count. */
  minRatings?: number;
}

export interface Reason {
  movieId: number;
  contribution: number;
}

export interface Recommendation {
  items: Int32Array;
  scores: Float32Array;
  /** ease: per item, the user's rated items that contributed most (top 3, largest first). */
  reasons?: Reason[][];
}

/** Many users' lists: user u's items are items[u*k .. u*k + counts[u]). */
export interface BatchRecommendation {
  userIds: Int32Array;
  k: number;
  items: Int32Array;
  scores: Float32Array;
  counts: Int32Array;
}

const REASONS = 3;

export class Ranker {
  readonly model: RankModel;
  readonly itemIds: Int32Array;
  readonly trainCounts: Int32Array;
  /** The model as given (what a worker thread rebuilds this ranker from). */
  readonly source: RankerModel;
  private readonly candidates: Int32Array;
  private readonly candidateOf: Int32Array;
  private readonly rows?: SparseRows;
  private readonly scores: Float64Array;
  private readonly popularOrder: Int32Array;
  private readonly exclude: Int32Array;
  private selector?: TopKSelector;
  private readonly result: TopKResult = { index: new Int32Array(0), score: new Float64Array(0), count: 0 };

  constructor(m: RankerModel) {
    this.model = m.model;
    this.source = m;
    this.itemIds = m.itemIds;
    this.trainCounts = m.trainCounts;
    const all = Int32Array.from({ length: m.itemIds.length }, (_, i) => i);
    this.candidates = m.model === "ease" && m.modelItems ? m.modelItems : all;
    this.candidateOf = new Int32Array(m.itemIds.length).fill(-1);
    for (let c = 0; c < this.candidates.length; c++) this.candidateOf[this.candidates[c]] = c;
    this.rows = m.model === "ease" ? m.rows : undefined;
    this.scores = new Float64Array(this.candidates.length);
    this.exclude = new Int32Array(m.itemIds.length);
    // Every item by training count, then id: the popularity model and EASE's empty-history answer.
    this.popularOrder = all.sort((a, b) => m.trainCounts[b] - m.trainCounts[a] || m.itemIds[a] - m.itemIds[b]);
  }

  /** Items the model can recommend. */
  get candidateCount(): number {
    return this.candidates.length;
  }

  /** The position of a movie id among the training items, or -1. */
  positionOf(movieId: number): number {
    return binarySearch(this.itemIds, movieId);
  }

  /** The top k for a user whose training items are `history` (movie ids; unknown ones are ignored). */
  recommend(history: Int32Array, k: number, options: RecommendOptions = {}): Recommendation {
    const positions = new Int32Array(history.length);
    let n = 0;
    for (const id of history) {
      const p = this.positionOf(id);
      if (p >= 0) positions[n++] = p;
    }
    const hist = positions.subarray(0, n).sort();
    const items = new Int32Array(k);
    const scores = new Float32Array(k);
    const count = this.topFor(hist, k, options, items, scores, 0);
    const out: Recommendation = { items: items.slice(0, count), scores: scores.slice(0, count) };
    if (this.rows && this.usesModel(hist)) out.reasons = Array.from(out.items, (id) => this.reasonsFor(hist, id));
    return out;
  }

  /**
   * Training rows (user, movie) grouped by user as this ranker's item positions, users ascending:
   * what recommendAll reads. Rows of a movie the ranker does not know are left out.
   */
  histories(userIds: Int32Array, movieIds: Int32Array, take: (i: number) => boolean = () => true): Histories {
    const pos = positionsOf(this.itemIds, movieIds);
    return groupByUser(
      userIds,
      (i) => pos[i] >= 0 && take(i),
      (i) => pos[i],
    );
  }

  /** Every user's top k from grouped histories (item positions, see `histories`); buffers reused throughout. */
  recommendAll(
    histories: { userIds: Int32Array; offsets: Int32Array; items: Int32Array },
    k: number,
    options: RecommendOptions = {},
  ): BatchRecommendation {
    const users = histories.userIds.length;
    const items = new Int32Array(users * k);
    const scores = new Float32Array(users * k);
    const counts = new Int32Array(users);
    for (let u = 0; u < users; u++) {
      const hist = histories.items.subarray(histories.offsets[u], histories.offsets[u + 1]);
      counts[u] = this.topFor(hist, k, options, items, scores, u * k);
    }
    return { userIds: histories.userIds, k, items, scores, counts };
  }

  /**
   * Every user's top k once per column scale: list s is what `recommendAll` gives for the model
   * whose B has column j multiplied by scales[s][j] (a popularity penalty, see @ms/rank's
   * penalisePopularity), from one scoring pass per user instead of one per scale. For EASE only.
   */
  recommendAllScaled(histories: Histories, k: number, scales: readonly Float64Array[]): BatchRecommendation[] {
    const users = histories.userIds.length;
    const out = scales.map(() => ({
      userIds: histories.userIds,
      k,
      items: new Int32Array(users * k),
      scores: new Float32Array(users * k),
      counts: new Int32Array(users),
    }));
    const raw = new Float64Array(this.scores.length);
    for (let u = 0; u < users; u++) {
      const hist = histories.items.subarray(histories.offsets[u], histories.offsets[u + 1]);
      if (!this.rows || !this.usesModel(hist)) {
        for (const b of out) b.counts[u] = this.popularFor(hist, k, true, 0, b.items, b.scores, u * k);
        continue;
      }
      this.scoreInto(hist);
      raw.set(this.scores);
      scales.forEach((scale, s) => {
        for (let c = 0; c < raw.length; c++) this.scores[c] = raw[c] * scale[c];
        out[s].counts[u] = this.selectTop(hist, k, {}, out[s].items, out[s].scores, u * k);
      });
    }
    return out;
  }

  private usesModel(hist: Int32Array): boolean {
    for (const p of hist) if (this.candidateOf[p] >= 0) return true;
    return false;
  }

  /** Writes the top k movie ids and scores at `at`; returns how many. `hist` holds item positions. */
  private topFor(hist: Int32Array, k: number, o: RecommendOptions, items: Int32Array, scores: Float32Array, at: number): number {
    if (!this.rows || !this.usesModel(hist)) return this.popularFor(hist, k, o.excludeSeen ?? true, o.minRatings ?? 0, items, scores, at);
    this.scoreInto(hist);
    return this.selectTop(hist, k, o, items, scores, at);
  }

  /** this.scores = the user's EASE scores over the candidates: the sum of B's rows of the rated model items. */
  private scoreInto(hist: Int32Array): void {
    const s = this.scores;
    s.fill(0);
    const { offsets, cols, values } = this.rows as SparseRows;
    const full = s.length - 1;
    for (const p of hist) {
      const c = this.candidateOf[p];
      if (c < 0) continue;
      const o = offsets[c];
      if (offsets[c + 1] - o === full) {
        // A whole row (every column but c, in order): contiguous adds, no column lookups.
        for (let j = 0; j < c; j++) s[j] += values[o + j];
        for (let j = c + 1; j <= full; j++) s[j] += values[o + j - 1];
      } else for (let e = o; e < offsets[c + 1]; e++) s[cols[e]] += values[e];
    }
  }

  /** The top k of this.scores, the floor and the user's own items applied, written at `at`; returns how many. */
  private selectTop(hist: Int32Array, k: number, o: RecommendOptions, items: Int32Array, scores: Float32Array, at: number): number {
    const s = this.scores;
    const minRatings = o.minRatings ?? 0;
    if (minRatings > 0)
      for (let c = 0; c < s.length; c++) if (this.trainCounts[this.candidates[c]] < minRatings) s[c] = Number.NEGATIVE_INFINITY;
    let ex = 0;
    if (o.excludeSeen ?? true)
      for (const p of hist) {
        const c = this.candidateOf[p];
        if (c >= 0) this.exclude[ex++] = c;
      }
    if (!this.selector || this.selector.k !== k) this.selector = new TopKSelector(s.length, k, this.candidates);
    const top = this.selector.select(s, this.exclude.subarray(0, ex), this.result);
    for (let r = 0; r < top.count; r++) {
      items[at + r] = this.itemIds[this.candidates[top.index[r]]];
      scores[at + r] = top.score[r];
    }
    return top.count;
  }

  /** The most-rated items not excluded, walking the precomputed order. */
  private popularFor(
    hist: Int32Array,
    k: number,
    excludeSeen: boolean,
    minRatings: number,
    items: Int32Array,
    scores: Float32Array,
    at: number,
  ): number {
    let count = 0;
    for (let r = 0; r < this.popularOrder.length && count < k; r++) {
      const p = this.popularOrder[r];
      if (this.trainCounts[p] < minRatings) break;
      // hist is ascending: a binary search per candidate keeps this O(k log n).
      if (excludeSeen && binarySearch(hist, p) >= 0) continue;
      items[at + count] = this.itemIds[p];
      scores[at + count++] = this.trainCounts[p];
    }
    return count;
  }

  /** The user's rated items whose B entry toward `movieId` is largest (top 3, positive only). */
  private reasonsFor(hist: Int32Array, movieId: number): Reason[] {
    const rows = this.rows;
    const target = this.candidateOf[this.positionOf(movieId)];
    if (!rows || target < 0) return [];
    const found: Reason[] = [];
    for (const p of hist) {
      const c = this.candidateOf[p];
      if (c < 0) continue;
      const e = binarySearch(rows.cols.subarray(rows.offsets[c], rows.offsets[c + 1]), target);
      if (e >= 0 && rows.values[rows.offsets[c] + e] > 0)
        found.push({ movieId: this.itemIds[p], contribution: rows.values[rows.offsets[c] + e] });
    }
    return found.sort((a, b) => b.contribution - a.contribution || a.movieId - b.movieId).slice(0, REASONS);
  }
}
