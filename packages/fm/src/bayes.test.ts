/**
 * The sampler's optional groups on generated ratings with a known structure: each group recovers
 * the effect the data were made with (held-out RMSE with the group beats without it by a clear
 * margin, on a seed the group was not built on), validation stopping stops early on easy data and
 * says when, a seed repeats exactly with every group on, and the implicit block's cost is linear in
 * the ratings whatever their spread over users (entries visited, not time).
 */
import { mulberry32 } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { type GibbsData, type GibbsOptions, gibbsFit } from "./bayes.js";
import { Normal } from "./gaussian.js";
import { groupBy, Relation } from "./relation.js";

interface Made {
  data: GibbsData;
  train: Int32Array;
  test: Int32Array;
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** Rows into a training and a test part (every `every`-th row of a user tests). */
function made(u: number[], m: number[], r: number[], t: number[], nUsers: number, nItems: number, every: number): Made {
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < r.length; i++) (i % every === every - 1 ? test : train).push(i);
  return {
    data: {
      userIdx: Int32Array.from(u),
      itemIdx: Int32Array.from(m),
      ratings: Float32Array.from(r),
      timestamps: Float64Array.from(t),
      nUsers,
      nItems,
    },
    train: Int32Array.from(train),
    test: Int32Array.from(test),
  };
}

/**
 * Users with a favourite genre pick 70% of their few movies from it and rate that genre 1.2 higher:
 * which movies a user rated says what the user likes (the implicit effect). `flip` swaps the roles
 * of users and movies, so the movies' audiences carry it (the flipped side's effect).
 */
function implicitData(seed: number, flip: boolean): Made {
  const next = mulberry32(seed);
  const genres = 4;
  const nUsers = 600;
  const nItems = 120;
  const genreOf = Int32Array.from({ length: nItems }, (_, j) => j % genres);
  const bias = Float64Array.from({ length: nItems }, () => 0.3 * gaussian(next));
  const u: number[] = [];
  const m: number[] = [];
  const r: number[] = [];
  for (let a = 0; a < nUsers; a++) {
    const fav = Math.floor(next() * genres);
    const seen = new Set<number>();
    while (seen.size < 8) {
      const j = next() < 0.7 ? fav + genres * Math.floor(next() * (nItems / genres)) : Math.floor(next() * nItems);
      if (seen.has(j)) continue;
      seen.add(j);
      u.push(a);
      m.push(j);
      r.push(3 + bias[j] + (genreOf[j] === fav ? 1.2 : 0) + 0.3 * gaussian(next));
    }
  }
  const t = r.map(() => 0);
  return flip ? made(m, u, r, t, nItems, nUsers, 4) : made(u, m, r, t, nUsers, nItems, 4);
}

/**
 * r = 3.2 + b_u + b_m + drift(bin) + mood(user, day) + noise: a global drift over the range and
 * a per-user mood on each day, the user rating 6 movies on each of 5 days.
 */
function timeData(seed: number): Made {
  const next = mulberry32(seed);
  const nUsers = 150;
  const nItems = 100;
  const bm = Float64Array.from({ length: nItems }, () => 0.3 * gaussian(next));
  const start = 1_000_000_000;
  const span = 3 * 365 * 86_400;
  const u: number[] = [];
  const m: number[] = [];
  const r: number[] = [];
  const t: number[] = [];
  for (let a = 0; a < nUsers; a++) {
    const bu = 0.3 * gaussian(next);
    for (let d = 0; d < 5; d++) {
      const day = start + Math.floor(next() * span);
      const mood = 0.6 * gaussian(next);
      for (let k = 0; k < 6; k++) {
        const j = Math.floor(next() * nItems);
        const when = day - (day % 86_400) + Math.floor(next() * 80_000);
        const drift = 0.5 * Math.sin((2 * Math.PI * (when - start)) / span);
        u.push(a);
        m.push(j);
        r.push(3.2 + bu + bm[j] + drift + mood + 0.25 * gaussian(next));
        t.push(when);
      }
    }
  }
  return made(u, m, r, t, nUsers, nItems, 5);
}

async function testRmse(x: Made, options: GibbsOptions): Promise<number> {
  const fit = await gibbsFit(x.data, x.train, x.test, options);
  let se = 0;
  x.test.forEach((i, k) => (se += (fit.predictions[k] - x.data.ratings[i]) ** 2));
  return Math.sqrt(se / x.test.length);
}

const base = { rank: 4, samples: 60, burnIn: 15, seed: 3 };

describe("gibbsFit's groups recover the effects the data were made with", () => {
  it("the implicit user side", async () => {
    const x = implicitData(101, false);
    const off = await testRmse(x, base);
    const on = await testRmse(x, { ...base, features: { implicitUser: true } });
    expect(on).toBeLessThan(off - 0.05);
  });

  it("the implicit movie side (the flipped data)", async () => {
    const x = implicitData(202, true);
    const off = await testRmse(x, base);
    const on = await testRmse(x, { ...base, features: { implicitMovie: true } });
    expect(on).toBeLessThan(off - 0.05);
  });

  it("time: the drift and the users' day moods", async () => {
    const x = timeData(303);
    const off = await testRmse(x, base);
    const on = await testRmse(x, { ...base, features: { time: true } });
    expect(on).toBeLessThan(off - 0.1);
  });
});

/**
 * An ordered probit's ratings: latent z = b_u + b_m + p_u.q_m + N(0, 1), cut at unevenly spaced
 * points into the stars 1..5 (most ratings 4, few 1 or 2), as real ratings are.
 */
function ordinalData(seed: number): Made {
  const next = mulberry32(seed);
  const nUsers = 200;
  const nItems = 80;
  const rank = 2;
  const bu = Float64Array.from({ length: nUsers }, () => 0.8 * gaussian(next));
  const bm = Float64Array.from({ length: nItems }, () => 0.8 * gaussian(next));
  const P = Float64Array.from({ length: nUsers * rank }, () => 0.8 * gaussian(next));
  const Q = Float64Array.from({ length: nItems * rank }, () => 0.8 * gaussian(next));
  const cuts = [-2.2, -1.4, -0.3, 1.6];
  const u: number[] = [];
  const m: number[] = [];
  const r: number[] = [];
  for (let a = 0; a < nUsers; a++)
    for (let k = 0; k < 15; k++) {
      const j = Math.floor(next() * nItems);
      let z = bu[a] + bm[j] + gaussian(next);
      for (let f = 0; f < rank; f++) z += P[a * rank + f] * Q[j * rank + f];
      u.push(a);
      m.push(j);
      r.push(1 + cuts.filter((c) => z >= c).length);
    }
  return made(
    u,
    m,
    r,
    r.map(() => 0),
    nUsers,
    nItems,
    5,
  );
}

describe("gibbsFit", () => {
  it("ordinal output: expected ratings of a probit's data beat the regression's", async () => {
    const x = ordinalData(707);
    const o = { ...base, samples: 120, burnIn: 30 };
    const off = await testRmse(x, o);
    const fit = await gibbsFit(x.data, x.train, x.test, { ...o, features: { ordinal: true } });
    let se = 0;
    x.test.forEach((i, k) => (se += (fit.predictions[k] - x.data.ratings[i]) ** 2));
    const on = Math.sqrt(se / x.test.length);
    expect(on).toBeLessThan(off - 0.01);
    expect(Array.from(fit.ordinal?.levels ?? [])).toEqual([1, 2, 3, 4, 5]);
    for (const p of fit.predictions) expect(p >= 1 && p <= 5).toBe(true);
  });

  it("stops early by the validation rows on easy data and reports the sweeps it ran", async () => {
    const x = timeData(404);
    const validation = {
      userIdx: Int32Array.from(x.test, (i) => x.data.userIdx[i]),
      itemIdx: Int32Array.from(x.test, (i) => x.data.itemIdx[i]),
      ratings: Float32Array.from(x.test, (i) => x.data.ratings[i]),
      timestamps: Float64Array.from(x.test, (i) => (x.data.timestamps as Float64Array)[i]),
    };
    const o = { ...base, samples: 1000, burnIn: 10, features: { time: true }, validation };
    const fit = await gibbsFit(x.data, x.train, x.test, o);
    expect(fit.samplesUsed).toBeGreaterThan(10);
    expect(fit.samplesUsed).toBeLessThan(1000);
    // It stopped at a check: the checks run every 5 kept sweeps, and it stopped after 3 stale ones.
    expect((fit.samplesUsed - 10) % 5).toBe(0);
    expect(fit.validationRmse.length).toBe((fit.samplesUsed - 10) / 5);
    const last = fit.validationRmse.slice(-4);
    expect(Math.min(...last.slice(1))).toBeGreaterThan(last[0] - 2e-4 * 3);
    const full = await gibbsFit(x.data, x.train, x.test, { ...o, validation: undefined, samples: fit.samplesUsed });
    expect(Array.from(full.predictions)).toEqual(Array.from(fit.predictions));
  });

  it("repeats exactly for a seed with every group on, and changes with it", async () => {
    const x = timeData(505);
    const o = { ...base, samples: 12, burnIn: 4, features: { implicitUser: true, implicitMovie: true, time: true } };
    const a = await gibbsFit(x.data, x.train, x.test, o);
    const b = await gibbsFit(x.data, x.train, x.test, o);
    const c = await gibbsFit(x.data, x.train, x.test, { ...o, seed: 4 });
    expect(Buffer.from(b.predictions.buffer).equals(Buffer.from(a.predictions.buffer))).toBe(true);
    expect(Buffer.from(b.userMean.buffer).equals(Buffer.from(a.userMean.buffer))).toBe(true);
    expect(Buffer.from(c.predictions.buffer).equals(Buffer.from(a.predictions.buffer))).toBe(false);
    for (const v of a.predictions) expect(Number.isFinite(v)).toBe(true);
  });

  it("refuses time without timestamps, naming them", async () => {
    const x = timeData(606);
    const { timestamps: _, ...untimed } = x.data;
    await expect(gibbsFit(untimed, x.train, x.test, { ...base, features: { time: true } })).rejects.toThrow(/timestamps/);
  });
});

describe("the implicit relation block", () => {
  /** Entries visited by one draw of every member vector, for `n` ratings spread as `perUser`. */
  function visits(perUser: number[], nItems: number, rank: number): { visits: number; n: number } {
    const next = mulberry32(9);
    const u: number[] = [];
    const m: number[] = [];
    perUser.forEach((count, a) => {
      for (let k = 0; k < count; k++) {
        u.push(a);
        m.push((a * 7 + k) % nItems);
      }
    });
    const userIdx = Int32Array.from(u);
    const itemIdx = Int32Array.from(m);
    const rows = Int32Array.from(u, (_, i) => i);
    const rel = new Relation(groupBy(userIdx, itemIdx, rows, perUser.length), groupBy(itemIdx, userIdx, rows, nItems), rank);
    const partner = Float64Array.from({ length: nItems * rank }, () => next() - 0.5);
    const e = Float64Array.from(u, () => next() - 0.5);
    rel.sample(partner, e, 1, new Normal(next));
    return { visits: rel.visits, n: u.length };
  }

  it("costs O(N rank) per draw, however the ratings spread over users", () => {
    const rank = 5;
    const even = visits(new Array(200).fill(50), 1000, rank);
    const skewed = visits([5000, ...new Array(100).fill(50)], 6000, rank);
    const few = visits(new Array(2000).fill(5), 1000, rank);
    for (const r of [even, skewed, few]) {
      expect(r.n).toBe(10_000);
      // Per coordinate: one pass over the owners' rows, two over the members', at most one more to update residuals.
      expect(r.visits).toBeGreaterThanOrEqual(3 * r.n * rank);
      expect(r.visits).toBeLessThanOrEqual(4 * r.n * rank);
    }
  });
});
