/**
 * Top-k selection over a score vector, shared by every top-N list of ms: the k best candidates,
 * best first, by partial selection (a bounded min-heap, O(n log k), never a full sort of n).
 * Ties go to the smaller item id (the candidate's index when no ids are given), so a list is a
 * pure function of the scores. A candidate is skipped when it is excluded (the user's training
 * items) or its score is not finite (NaN, -Infinity: "not a candidate", e.g. an item under a
 * rating-count floor). The selector keeps its buffers, so a batch over many users allocates
 * nothing per user.
 */

export interface TopKResult {
  /** Candidate indices into the score vector, best first (the first `count` entries). */
  index: Int32Array;
  score: Float64Array;
  count: number;
}

/** True when candidate a (score sa, tie key ta) ranks below b. */
function worse(sa: number, ta: number, sb: number, tb: number): boolean {
  return sa < sb || (sa === sb && ta > tb);
}

/** A reusable top-k selector over score vectors of length `n`. */
export class TopKSelector {
  readonly n: number;
  readonly k: number;
  private readonly heapIndex: Int32Array;
  private readonly heapScore: Float64Array;
  private readonly heapTie: Float64Array;
  private readonly excluded: Uint8Array;
  private readonly ties?: ArrayLike<number>;

  /** `ids`: the tie-break key of each candidate (item ids); default the index. */
  constructor(n: number, k: number, ids?: ArrayLike<number>) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    if (ids && ids.length !== n) throw new RangeError(`ids has ${ids.length} entries for ${n} candidates`);
    this.n = n;
    this.k = k;
    this.heapIndex = new Int32Array(k);
    this.heapScore = new Float64Array(k);
    this.heapTie = new Float64Array(k);
    this.excluded = new Uint8Array(n);
    this.ties = ids;
  }

  /**
   * The best min(k, candidates) of `scores` (length n), skipping the indices in `exclude`.
   * The result's arrays are fresh (or `out`'s, when given with room for k).
   */
  select(scores: ArrayLike<number>, exclude?: ArrayLike<number>, out?: TopKResult): TopKResult {
    if (scores.length !== this.n) throw new RangeError(`scores has ${scores.length} entries, the selector ${this.n}`);
    const { excluded } = this;
    if (exclude) for (let j = 0; j < exclude.length; j++) if (exclude[j] >= 0 && exclude[j] < this.n) excluded[exclude[j]] = 1;
    const count = this.fill(scores);
    if (exclude) for (let j = 0; j < exclude.length; j++) if (exclude[j] >= 0 && exclude[j] < this.n) excluded[exclude[j]] = 0;
    return this.drain(count, out);
  }

  /** Runs the heap over every candidate; returns how many it holds. */
  private fill(scores: ArrayLike<number>): number {
    const { k, heapIndex: hi, heapScore: hs, heapTie: ht, excluded, ties } = this;
    let count = 0;
    for (let i = 0; i < this.n; i++) {
      const s = scores[i];
      if (excluded[i] === 1 || !(s > Number.NEGATIVE_INFINITY)) continue;
      const t = ties ? ties[i] : i;
      if (count < k) {
        // Sift up: the heap's root is its worst entry.
        let c = count++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (!worse(s, t, hs[p], ht[p])) break;
          hi[c] = hi[p];
          hs[c] = hs[p];
          ht[c] = ht[p];
          c = p;
        }
        hi[c] = i;
        hs[c] = s;
        ht[c] = t;
      } else if (worse(hs[0], ht[0], s, t)) this.replaceRoot(i, s, t, count);
    }
    return count;
  }

  private replaceRoot(i: number, s: number, t: number, count: number): void {
    const { heapIndex: hi, heapScore: hs, heapTie: ht } = this;
    let c = 0;
    for (;;) {
      const l = 2 * c + 1;
      if (l >= count) break;
      const r = l + 1;
      const m = r < count && worse(hs[r], ht[r], hs[l], ht[l]) ? r : l;
      if (!worse(hs[m], ht[m], s, t)) break;
      hi[c] = hi[m];
      hs[c] = hs[m];
      ht[c] = ht[m];
      c = m;
    }
    hi[c] = i;
    hs[c] = s;
    ht[c] = t;
  }

  /** Pops the heap worst first into the result, so the result reads best first. */
  private drain(count: number, out?: TopKResult): TopKResult {
    const index = out && out.index.length >= count ? out.index : new Int32Array(this.k);
    const score = out && out.score.length >= count ? out.score : new Float64Array(this.k);
    const { heapIndex: hi, heapScore: hs, heapTie: ht } = this;
    for (let size = count; size > 0; size--) {
      index[size - 1] = hi[0];
      score[size - 1] = hs[0];
      const lastI = hi[size - 1];
      const lastS = hs[size - 1];
      const lastT = ht[size - 1];
      if (size > 1) this.replaceRoot(lastI, lastS, lastT, size - 1);
    }
    const result = out ?? { index, score, count };
    result.index = index;
    result.score = score;
    result.count = count;
    return result;
  }
}

/** One-shot top-k (see TopKSelector): indices of the best k scores, best first, ties by smaller id. */
export function topK(
  scores: ArrayLike<number>,
  k: number,
  options: { exclude?: ArrayLike<number>; ids?: ArrayLike<number> } = {},
): TopKResult {
  return new TopKSelector(scores.length, k, options.ids).select(scores, options.exclude);
}
