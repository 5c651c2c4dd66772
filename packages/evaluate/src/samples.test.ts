/**
 * The report's sample users: the 10th, 50th and 90th percentile of the evaluated users by training
 * ratings (ties by id), the same whatever the row order; each with the model's top list (titled,
 * test hits marked) beside their highest-rated training movies, best first.
 */
import { describe, expect, it } from "vitest";
import type { RatingsColumns } from "@ms/etl";
import { rankingData } from "./data.js";
import { scoreLister } from "./ranking.js";
import { SAMPLE_TOP, sampleUserIndices, samples } from "./samples.js";
import { popularityScorer } from "./scorers.js";

const SPLIT = { kind: "file" as const, seed: 0, splitProp: 0.5 };

/** User u (1..20) rates movies 1..u+1 in training (rating 1 + (u + m) % 5) and movie 30 in test. */
function rows(): [number, number, number, boolean][] {
  const out: [number, number, number, boolean][] = [];
  for (let u = 1; u <= 20; u++) {
    for (let m = 1; m <= u + 1; m++) out.push([u, m, 1 + ((u + m) % 5), false]);
    out.push([u, 30, 4, true]);
  }
  out.push([21, 30, 5, false]);
  return out;
}

function columns(r: [number, number, number, boolean][]): RatingsColumns {
  return {
    rows: r.length,
    userIds: Int32Array.from(r, (x) => x[0]),
    movieIds: Int32Array.from(r, (x) => x[1]),
    ratings: Float32Array.from(r, (x) => x[2]),
    splitKey: Float32Array.from(r, (x) => (x[3] ? 0.9 : 0.1)),
  };
}

describe("sample users", () => {
  it("are a light, a middling and a heavy rater, whatever the row order", () => {
    const data = rankingData(columns(rows()), SPLIT, 0);
    expect(Array.from(sampleUserIndices(data), (u) => data.userIds[u])).toEqual([3, 11, 19]);
    const shuffled = rankingData(columns(rows().reverse()), SPLIT, 0);
    expect(Array.from(sampleUserIndices(shuffled), (u) => shuffled.userIds[u])).toEqual([3, 11, 19]);
  });

  it("show the model's top list beside their highest-rated movies, titled, test hits marked", async () => {
    const data = rankingData(columns(rows()), SPLIT, 0);
    const titles = new Map([
      [30, "Thirty (1930)"],
      [1, "One (1901)"],
    ]);
    const got = await samples(scoreLister(popularityScorer(data.trainCount)), data, titles);
    expect(got.map((s) => s.userId)).toEqual([3, 11, 19]);
    const light = got[0];
    expect(light.rated).toBe(4);
    // Popularity over unseen movies: 5, 6, ... are rated by most users; 30 only by user 21, so it comes last.
    expect(light.recommendations.length).toBe(SAMPLE_TOP);
    expect(light.recommendations.map((r) => r.movieId)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(light.recommendations.every((r) => !r.relevant && r.title === null)).toBe(true);
    // User 3's ratings: movie m gets 1 + (3 + m) % 5 -> 1:5, 2:1, 3:2, 4:3.
    expect(light.favourites).toEqual([
      { movieId: 1, title: "One (1901)", rating: 5 },
      { movieId: 4, title: null, rating: 3 },
      { movieId: 3, title: null, rating: 2 },
      { movieId: 2, title: null, rating: 1 },
    ]);
    const heavy = got[2];
    expect(heavy.favourites).toHaveLength(SAMPLE_TOP);
    expect(heavy.recommendations.find((r) => r.movieId === 30)).toEqual({ movieId: 30, title: "Thirty (1930)", score: 1, relevant: true });
  });
});
