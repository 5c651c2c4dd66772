/**
 * Top-k selection over a score vector: the k best candidates in one pass through a bounded
 * min-heap (O(n log k), no sort of n scores), skipping the ones a mask marks (seen movies, movies
 * under the training-count floor); ties go to the smaller movie id, so a list never depends on
 * the order candidates were scored in.
 */

/** True when candidate a (score sa, id ia) ranks before candidate b. */
function before(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa > sb || (sa === sb && ia < ib);
}

/**
 * A reusable top-k selector: `select` writes the indices (into `scores`/`ids`) of the best `k`
 * candidates not marked in `skip`, best first, into `out` and returns how many it found (fewer
 * than k when fewer are eligible). Its heap is kept between calls, so a batch allocates once.
 */
export class TopK {
  private heap: Int32Array;

  constructor(private readonly k: number) {
    this.heap = new Int32Array(Math.max(1, k));
  }

  select(scores: ArrayLike<number>, ids: ArrayLike<number>, skip: Uint8Array | undefined, out: Int32Array): number {
    const { k, heap } = this;
    let size = 0;
    const n = scores.length;
    for (let i = 0; i < n; i++) {
      if (skip !== undefined && skip[i] !== 0) continue;
      const s = scores[i];
      if (size < k) {
        // Sift up: the heap's root is the worst of the kept candidates.
        let c = size++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (!before(scores[heap[p]], ids[heap[p]], s, ids[i])) break;
          heap[c] = heap[p];
          c = p;
        }
        heap[c] = i;
      } else if (k > 0 && before(s, ids[i], scores[heap[0]], ids[heap[0]])) {
        this.siftDown(scores, ids, i, size);
      }
    }
    // Pop the worst first into the back of `out`: the list comes out best first.
    for (let end = size - 1; end >= 0; end--) {
      out[end] = heap[0];
      const last = heap[end];
      if (end > 0) this.siftDown(scores, ids, last, end);
    }
    return size;
  }

  /** Puts candidate `i` at the root of a heap of `size` and sifts it down to its place. */
  private siftDown(scores: ArrayLike<number>, ids: ArrayLike<number>, i: number, size: number): void {
    const heap = this.heap;
    const s = scores[i];
    const id = ids[i];
    let c = 0;
    for (;;) {
      let w = 2 * c + 1;
      if (w >= size) break;
      const r = w + 1;
      // The worse child moves up (the root must be the worst).
      if (r < size && before(scores[heap[w]], ids[heap[w]], scores[heap[r]], ids[heap[r]])) w = r;
      if (!before(s, id, scores[heap[w]], ids[heap[w]])) break;
      heap[c] = heap[w];
      c = w;
    }
    heap[c] = i;
  }
}
