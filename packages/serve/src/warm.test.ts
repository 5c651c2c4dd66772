/** warmPairs: the warm subset of a batch, in order, with its timestamps, and each cold pair's unknown side. */
import { describe, expect, it } from "vitest";
import { warmPairs } from "./warm.js";

const known = { hasUser: (id: number) => id < 10, hasMovie: (id: number) => id < 100 };

describe("warmPairs", () => {
  it("gathers the warm pairs in batch order with their timestamps and names each cold pair's unknown side", () => {
    const users = Int32Array.from([1, 11, 2, 3, 12]);
    const movies = Int32Array.from([10, 20, 200, 30, 300]);
    const times = Float64Array.from([100, 200, 300, 400, 500]);
    const warm = warmPairs(known, users, movies, times);
    expect(warm.cold).toBe(3);
    expect(warm.sides).toEqual([undefined, "user", "movie", undefined, "user+movie"]);
    expect([...warm.userIds]).toEqual([1, 3]);
    expect([...warm.movieIds]).toEqual([10, 30]);
    expect([...(warm.timestamps ?? [])]).toEqual([100, 400]);
  });

  it("hands back the batch's own arrays when every pair is warm, and no timestamps when none were given", () => {
    const users = Int32Array.from([1, 2]);
    const movies = Int32Array.from([10, 20]);
    const warm = warmPairs(known, users, movies);
    expect(warm.cold).toBe(0);
    expect(warm.userIds).toBe(users);
    expect(warm.movieIds).toBe(movies);
    expect(warm.timestamps).toBeUndefined();
  });

  it("gives empty warm arrays when every pair is cold", () => {
    const warm = warmPairs(known, Int32Array.from([50]), Int32Array.from([5]), Float64Array.from([1]));
    expect(warm.cold).toBe(1);
    expect(warm.userIds.length).toBe(0);
    expect(warm.timestamps?.length).toBe(0);
  });
});
