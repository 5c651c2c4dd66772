/**
 * The report's sample users: three evaluated users chosen deterministically (the 10th, 50th and
 * 90th percentile of the users ordered by how many training ratings they have, ties by id: a
 * light, a middling and a heavy rater), each with the default recommender's top 10 beside the
 * user's own highest-rated training movies, with titles, so a person sees what the model does.
 */
import type { Lister } from "./ranking.js";
import type { RankingSample } from "./artifact.js";
import type { RankingData } from "./data.js";
import { keepUsers } from "./data.js";

export const SAMPLE_QUANTILES = [0.1, 0.5, 0.9] as const;
/** Movies per list in the report. */
export const SAMPLE_TOP = 10;

/** Indices (into data.userIds, sorted, distinct) of the sample users. */
export function sampleUserIndices(data: RankingData): Int32Array {
  const n = data.userIds.length;
  const rated = (u: number) => data.seen.offsets[u + 1] - data.seen.offsets[u];
  const order = Array.from({ length: n }, (_, u) => u).sort((a, b) => rated(a) - rated(b) || data.userIds[a] - data.userIds[b]);
  const picked = new Set<number>();
  for (const q of SAMPLE_QUANTILES) if (n > 0) picked.add(order[Math.min(n - 1, Math.floor(q * n))]);
  return Int32Array.from(picked).sort();
}

/** The sample users' top lists from `lister` and their favourites, titled through `titles`. */
export async function samples(
  lister: Lister,
  data: RankingData,
  titles: ReadonlyMap<number, string> | undefined,
): Promise<RankingSample[]> {
  const picked = keepUsers(data, sampleUserIndices(data));
  const title = (movieId: number) => titles?.get(movieId) ?? null;
  const out: RankingSample[] = [];
  await lister.lists(picked, SAMPLE_TOP, (u, ids, scores, count) => {
    const from = picked.seen.offsets[u];
    const to = picked.seen.offsets[u + 1];
    const relevant = new Set(picked.relevant.items.subarray(picked.relevant.offsets[u], picked.relevant.offsets[u + 1]));
    const favourites = Array.from({ length: to - from }, (_, j) => from + j)
      .sort((a, b) => picked.seenRatings[b] - picked.seenRatings[a] || picked.seen.items[a] - picked.seen.items[b])
      .slice(0, SAMPLE_TOP)
      .map((j) => {
        const movieId = picked.itemIds[picked.seen.items[j]];
        return { movieId, title: title(movieId), rating: picked.seenRatings[j] };
      });
    const recommendations = Array.from(ids.subarray(0, count), (movieId, r) => ({
      movieId,
      title: title(movieId),
      score: Number(scores[r].toFixed(4)),
      relevant: relevant.has(movieId),
    }));
    out.push({ userId: picked.userIds[u], rated: to - from, recommendations, favourites });
  });
  return out;
}
