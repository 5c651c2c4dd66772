/**
 * The evaluation loop on hand-made data: a model's list leaves out the user's training movies and
 * what the model cannot score, its metrics are @ms/rank's definitions worked out by hand, the
 * pair scorer gives the same lists whether users go in one predict call or many, and the
 * published names are `<model>_<metric>_at_<k>`.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { RatingsColumns } from "@ms/etl";
import { rankingData } from "./data.js";
import { measure, measureAll, metricsRecord, scoreLister, type Lister } from "./ranking.js";
import { PAIRS_PER_CALL, pairScorer, popularityScorer } from "./scorers.js";

const SPLIT = { kind: "file" as const, seed: 0, splitProp: 0.5 };

/** Users 1..n; every user rated movie 1 in training; movies 2..m rated in training by the users that divide them; test: movie (u % m) + 1. */
function columns(users: number, movies: number): RatingsColumns {
  const rows: [number, number, boolean][] = [];
  for (let u = 1; u <= users; u++) {
    rows.push([u, 1, false]);
    for (let m = 2; m <= movies; m++) if (m % u === 0) rows.push([u, m, false]);
    const test = (u % movies) + 1;
    if (test !== 1 && test % u !== 0) rows.push([u, test, true]);
  }
  return {
    rows: rows.length,
    userIds: Int32Array.from(rows, (r) => r[0]),
    movieIds: Int32Array.from(rows, (r) => r[1]),
    ratings: new Float32Array(rows.length).fill(4),
    splitKey: Float32Array.from(rows, (r) => (r[2] ? 0.9 : 0.1)),
  };
}

/** Lists of a lister, by user id. */
async function listsOf(
  lister: ReturnType<typeof scoreLister>,
  data: ReturnType<typeof rankingData>,
  k: number,
): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>();
  await lister.lists(data, k, (u, ids, _s, count) => out.set(data.userIds[u], Array.from(ids.subarray(0, count))));
  return out;
}

describe("scoreLister", () => {
  it("lists the best unseen movies, ties to the smaller id, skipping movies the model cannot score", async () => {
    const data = rankingData(columns(3, 8), SPLIT, 0);
    // Scores the movie id itself; refuses movie 7.
    const scorer = pairScorer(
      "m",
      data.itemIds,
      (m) => m !== 7,
      async (_u, m) => Float64Array.from(m, (x) => x),
    );
    const lists = await listsOf(scoreLister(scorer), data, 3);
    // User 2 rated 1, 2, 4, 6, 8 in training: 7 is unscorable, so 5, 3.
    expect(lists.get(2)).toEqual([5, 3]);
    expect(lists.get(3)).toEqual([8, 5, 4]);
  });

  it("gives the same lists whether the users' pairs go in one predict call or many", async () => {
    const data = rankingData(columns(400, 900), SPLIT, 0);
    let calls = 0;
    const predict = async (u: Int32Array, m: Int32Array) => {
      calls++;
      return Float64Array.from(m, (x, i) => Math.sin(x * 7 + u[i]));
    };
    const lists = await listsOf(scoreLister(pairScorer("m", data.itemIds, () => true, predict)), data, 10);
    expect(calls).toBe(Math.ceil(data.userIds.length / Math.floor(PAIRS_PER_CALL / data.itemIds.length)));
    expect(calls).toBeGreaterThan(1);
    // One user at a time, scored directly.
    for (const userId of [data.userIds[0], data.userIds[200], data.userIds[data.userIds.length - 1]]) {
      const u = Array.from(data.userIds).indexOf(userId);
      const seen = new Set(Array.from(data.seen.items.subarray(data.seen.offsets[u], data.seen.offsets[u + 1]), (j) => data.itemIds[j]));
      const expected = Array.from(data.itemIds)
        .filter((m) => !seen.has(m))
        .sort((a, b) => Math.sin(b * 7 + userId) - Math.sin(a * 7 + userId) || a - b)
        .slice(0, 10);
      expect(lists.get(userId)).toEqual(expected);
    }
  });
});

describe("an interrupted evaluation", () => {
  it("stops at the next predict call with the signal's reason", async () => {
    const data = rankingData(columns(400, 900), SPLIT, 0);
    const controller = new AbortController();
    let calls = 0;
    const predict = async (_u: Int32Array, m: Int32Array) => {
      calls++;
      controller.abort(new Error("stop here"));
      return new Float64Array(m.length);
    };
    const lister = scoreLister(pairScorer("m", data.itemIds, () => true, predict));
    await expect(measure(lister, data, 10, controller.signal)).rejects.toThrow("stop here");
    expect(calls).toBe(1);
  });
});

describe("measure", () => {
  it("computes @ms/rank's metrics over the evaluated users, as worked out by hand", async () => {
    // Catalog 1..4 with training counts 3, 2, 1, 1; user 3 has no test rating, so users 1 and 2 are evaluated.
    const rows: [number, number, boolean][] = [
      [1, 1, false],
      [2, 1, false],
      [3, 1, false],
      [2, 2, false],
      [3, 2, false],
      [3, 3, false],
      [1, 4, false],
      [1, 3, true], // user 1: unseen 2, 3; relevant 3
      [2, 4, true], // user 2: unseen 3, 4; relevant 4
    ];
    const data = rankingData(
      {
        rows: rows.length,
        userIds: Int32Array.from(rows, (r) => r[0]),
        movieIds: Int32Array.from(rows, (r) => r[1]),
        ratings: new Float32Array(rows.length).fill(4),
        splitKey: Float32Array.from(rows, (r) => (r[2] ? 0.9 : 0.1)),
      },
      SPLIT,
      0,
    );
    expect(Array.from(data.userIds)).toEqual([1, 2]);
    const m = await measure(scoreLister(popularityScorer(data.trainCount)), data, 2);
    // Popularity lists: user 1 -> [2, 3] (hit at rank 2), user 2 -> [3, 4] (hit at rank 2).
    const dcg = 1 / Math.log2(3);
    expect(m.model).toBe("popularity");
    expect(m.precision).toBeCloseTo(0.5, 12);
    expect(m.recall).toBeCloseTo(1, 12);
    expect(m.ndcg).toBeCloseTo(dcg, 12);
    expect(m.map).toBeCloseTo(0.5, 12);
    expect(m.hitRate).toBe(1);
    expect(m.coverage).toBeCloseTo(3 / 4, 12);
    expect(m.popularityBias).toBeCloseTo((2 + 1 + 1 + 1) / 4, 12);
    expect(m.seconds).toBeGreaterThanOrEqual(0);
    const record = metricsRecord([m], 2, 2);
    expect(Object.keys(record).sort()).toEqual(
      [
        "eval_users",
        "popularity_coverage_at_2",
        "popularity_hit_rate_at_2",
        "popularity_map_at_2",
        "popularity_ndcg_at_2",
        "popularity_popularity_bias_at_2",
        "popularity_precision_at_2",
        "popularity_recall_at_2",
      ].sort(),
    );
    expect(record.popularity_ndcg_at_2).toBe(m.ndcg);
    expect(record.eval_users).toBe(2);
  });
});

describe("measureAll", () => {
  const data = rankingData(columns(12, 20), SPLIT, 0);
  /** A lister of the popularity lists that logs when it starts and ends; off-thread ones end only when `release` is called. */
  function traced(name: string, log: string[], offThread = false, fail = false) {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const inner = scoreLister(popularityScorer(data.trainCount));
    const lister: Lister = {
      model: name,
      offThread,
      async lists(d, k, visit, signal) {
        log.push(`start ${name}`);
        if (offThread) await gate;
        if (fail) throw new Error(`${name} failed`);
        if (signal?.aborted) throw new Error(`${name} stopped`);
        await inner.lists(d, k, visit);
        log.push(`end ${name}`);
      },
      dispose: () => undefined,
    };
    return { lister, release };
  }

  it("measures an off-thread lister beside the others, which run one at a time, and keeps the listers' order", async () => {
    const log: string[] = [];
    const a = traced("a", log);
    const w = traced("w", log, true);
    const b = traced("b", log);
    const told: string[] = [];
    const running = measureAll([a.lister, w.lister, b.lister], data, 3, (m) => told.push(m.model));
    // The off-thread one starts first and is still running when both others have ended.
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual(["start w", "start a", "end a", "start b", "end b"]);
    w.release();
    const models = await running;
    expect(models.map((m) => m.model)).toEqual(["a", "w", "b"]);
    expect(told).toEqual(["a", "b", "w"]);
    // The same lists, so the same figures as measured alone.
    const alone = await measure(traced("w", []).lister, data, 3);
    expect({ ...models[1], seconds: 0 }).toEqual({ ...alone, seconds: 0 });
  });

  it("stops the off-thread work when a lister here fails", async () => {
    const log: string[] = [];
    const w = traced("w", log, true);
    const running = measureAll([w.lister, traced("x", log, false, true).lister], data, 3, () => undefined);
    await expect(running).rejects.toThrow("x failed");
    w.release();
    await new Promise((r) => setTimeout(r, 10));
    expect(log).not.toContain("end w");
  });

  it("has the built worker the ranking step runs the keras network on", () => {
    expect(existsSync(fileURLToPath(new URL("../dist/worker.js", import.meta.url)))).toBe(true);
  });
});
