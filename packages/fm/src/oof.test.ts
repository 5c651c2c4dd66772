/**
 * Out-of-fold features and the Gibbs sampler on generated ratings with known structure: a
 * training row's features never depend on its own rating, test rows are scored by the full fit,
 * the sampler predicts held-out ratings to near the noise level, and a seed repeats exactly.
 */
import { splitMask } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import {
  AUTO_BAYES_MAX_TRAIN,
  gibbsFit,
  OOF_COLUMNS,
  outOfFoldFeatures,
  resolveOofModel,
  stackedKnows,
  stackedPairFeatures,
  stackedPredictions,
  type OofRatings,
} from "./index.js";

/** r = 3.5 + b_u + b_m + <p_u, q_m> + N(0, noise^2), every user rating `perUser` movies. */
function generate(users: number, movies: number, perUser: number, noise: number, seed: number): OofRatings {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12))) * Math.cos(2 * Math.PI * uniform());
  const rank = 3;
  const P = Float64Array.from({ length: users * rank }, () => 0.5 * gauss());
  const Q = Float64Array.from({ length: movies * rank }, () => 0.5 * gauss());
  const bu = Float64Array.from({ length: users }, () => 0.3 * gauss());
  const bm = Float64Array.from({ length: movies }, () => 0.3 * gauss());
  const u: number[] = [];
  const m: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < users; i++) {
    for (let k = 0; k < perUser; k++) {
      const j = Math.floor(uniform() * movies);
      let t = 3.5 + bu[i] + bm[j];
      for (let f = 0; f < rank; f++) t += P[i * rank + f] * Q[j * rank + f];
      u.push(i + 1);
      m.push(j * 7 + 2);
      r.push(t + noise * gauss());
    }
  }
  return { rows: u.length, userIds: Int32Array.from(u), movieIds: Int32Array.from(m), ratings: Float32Array.from(r) };
}

const split = { seed: 5, splitProp: 0.8 };
const opts = { folds: 3, rank: 3, samples: 30, burnIn: 8, seed: 11 };

describe("outOfFoldFeatures", () => {
  it("gives a training row features that do not depend on its own rating", async () => {
    const data = generate(60, 40, 25, 0.3, 1);
    const a = await outOfFoldFeatures(data, split, opts);
    const mask = splitMask(data.userIds, data.movieIds, split.seed, split.splitProp);
    const row = mask.indexOf(1);
    const changed = { ...data, ratings: data.ratings.slice() };
    changed.ratings[row] = data.ratings[row] + 3;
    const b = await outOfFoldFeatures(changed, split, opts);
    const w = a.width;
    expect(w).toBe(OOF_COLUMNS.length);
    expect(Array.from(b.values.subarray(row * w, row * w + w))).toEqual(Array.from(a.values.subarray(row * w, row * w + w)));
    // The rating did enter the other fits: some other training row's features moved.
    let moved = 0;
    for (let i = 0; i < data.rows; i++) if (i !== row && mask[i] === 1 && a.values[i * w] !== b.values[i * w]) moved++;
    expect(moved).toBeGreaterThan(0);
    expect(Array.from(a.trainMask)).toEqual(Array.from(mask));
  });

  it.each(["bayes", "als"] as const)(
    "the %s model: a training row's features do not depend on its own rating, and the tables reproduce the test rows",
    async (model) => {
      const data = generate(60, 40, 25, 0.3, 4);
      const o = { ...opts, model, als: { rank: 3, maxIter: 5, regParam: 0.1, nonnegative: false, numThreads: 1 } };
      const a = await outOfFoldFeatures(data, split, o);
      expect(a.model).toBe(model);
      const row = a.trainMask.indexOf(1);
      const changed = { ...data, ratings: data.ratings.slice() };
      changed.ratings[row] += 3;
      const b = await outOfFoldFeatures(changed, split, o);
      const w = a.width;
      expect(Array.from(b.values.subarray(row * w, row * w + w))).toEqual(Array.from(a.values.subarray(row * w, row * w + w)));
      const test: number[] = [];
      for (let i = 0; i < data.rows; i++)
        if (a.trainMask[i] === 0 && stackedKnows(a.tables, "user", data.userIds[i]) && stackedKnows(a.tables, "movie", data.movieIds[i]))
          test.push(i);
      expect(test.length).toBeGreaterThan(10);
      const served = stackedPairFeatures(
        a.tables,
        test.map((i) => data.userIds[i]),
        test.map((i) => data.movieIds[i]),
      );
      test.forEach((i, k) =>
        expect(Array.from(served.subarray(k * w, k * w + w))).toEqual(Array.from(a.values.subarray(i * w, i * w + w))),
      );
    },
  );

  it("auto groups: keeps time where ratings move with the day, leaves it out (the same features as without it) where they do not", async () => {
    const made = generate(150, 60, 30, 0.3, 8);
    // Each user rates on 5 days; a day lifts or lowers all its ratings together (sd 0.8).
    const day = Int32Array.from(made.userIds, (u, i) => (u * 7919 + i * 104729) % 5);
    const timestamps = Float64Array.from(day, (d, i) => 1_200_000_000 + (made.userIds[i] % 40) * 30 * 86_400 + d * 86_400);
    const effect = (u: number, d: number) => 0.8 * Math.sin(u * 12.9898 + d * 78.233) * 1.4;
    const dayRated = { ...made, timestamps, ratings: Float32Array.from(made.ratings, (r, i) => r + effect(made.userIds[i], day[i])) };
    const o = { ...opts, maxSamples: 120, burnIn: 5, select: ["time"] as const };
    const kept = await outOfFoldFeatures(dayRated, split, o);
    expect(kept.trials).toHaveLength(1);
    expect(kept.trials[0]).toMatchObject({ group: "time", kept: true });
    expect(kept.trials[0].rmseWith).toBeLessThan(kept.trials[0].rmseWithout - 2 * kept.trials[0].se);
    expect(kept.features.time).toBe(true);
    expect(kept.tables.time?.dayBias.length).toBeGreaterThan(0);

    const flat = await outOfFoldFeatures({ ...made, timestamps }, split, o);
    expect(flat.trials[0]).toMatchObject({ group: "time", kept: false });
    expect(flat.features.time).toBe(false);
    expect(flat.tables.time).toBeUndefined();
    const without = await outOfFoldFeatures({ ...made, timestamps }, split, { ...opts, maxSamples: 120, burnIn: 5 });
    expect(Buffer.from(flat.values.buffer).equals(Buffer.from(without.values.buffer))).toBe(true);
    expect(flat.samplesUsed).toEqual(without.samplesUsed);
  });

  it("fullSamples first: the full fit runs fold 1's count beside the other folds, the same on one thread and two", async () => {
    const made = generate(80, 50, 25, 0.3, 9);
    const timestamps = Float64Array.from(made.userIds, (u, i) => 1_200_000_000 + ((u * 7919 + i * 104729) % 6) * 86_400);
    const base = { ...opts, maxSamples: 120, burnIn: 5, fullSamples: "first" as const };
    // Without a selection fold 1 is fitted in the pool and the full fit waits on it; with one that
    // keeps no group, fold 1's fit is the trial's and the full fit starts at once.
    for (const o of [
      { ...base, features: { implicitUser: true } },
      { ...base, select: ["time"] as const },
    ]) {
      const data = { ...made, timestamps };
      const ended: number[] = [];
      const one = await outOfFoldFeatures(data, split, { ...o, threads: 1 });
      const two = await outOfFoldFeatures(data, split, { ...o, threads: 2, onFit: (fit) => ended.push(fit) });
      expect(one.samplesUsed[opts.folds]).toBe(one.samplesUsed[0]);
      expect(two.samplesUsed).toEqual(one.samplesUsed);
      expect(Buffer.from(two.values.buffer).equals(Buffer.from(one.values.buffer))).toBe(true);
      expect([...ended].sort()).toEqual([0, 1, 2, 3]);
    }
  });

  it("with every bayes group and the data-chosen count, the tables (given the times) reproduce the test rows", async () => {
    const made = generate(60, 40, 25, 0.3, 6);
    // Half stars, so the ordinal output has its ten classes.
    const data = { ...made, ratings: Float32Array.from(made.ratings, (r) => Math.min(5, Math.max(0.5, Math.round(2 * r) / 2))) };
    const timestamps = Float64Array.from(data.userIds, (u, i) => 1_200_000_000 + ((u * 7919 + i * 104729) % 6) * 86_400);
    const o = { ...opts, maxSamples: 300, burnIn: 5, features: { implicitUser: true, implicitMovie: true, time: true, ordinal: true } };
    const a = await outOfFoldFeatures({ ...data, timestamps }, split, o);
    expect(a.tables.ordinal?.cuts.length).toBe((a.tables.ordinal?.levels.length ?? 0) - 1);
    expect(a.samplesUsed.length).toBe(opts.folds + 1);
    expect(a.samplesUsed[opts.folds]).toBe(Math.max(...a.samplesUsed.slice(0, opts.folds)));
    expect(a.tables.time?.dayBias.length).toBeGreaterThan(0);
    const w = a.width;
    const test: number[] = [];
    for (let i = 0; i < data.rows; i++)
      if (a.trainMask[i] === 0 && stackedKnows(a.tables, "user", data.userIds[i]) && stackedKnows(a.tables, "movie", data.movieIds[i]))
        test.push(i);
    const pick = (xs: ArrayLike<number>) => test.map((i) => xs[i]);
    const served = stackedPairFeatures(a.tables, pick(data.userIds), pick(data.movieIds), pick(timestamps));
    test.forEach((i, k) => expect(Array.from(served.subarray(k * w, k * w + w))).toEqual(Array.from(a.values.subarray(i * w, i * w + w))));
    // Without a time, a pair is scored at the end of the training range: finite, and not the timed score.
    const untimed = stackedPairFeatures(a.tables, pick(data.userIds), pick(data.movieIds));
    for (const v of untimed) expect(Number.isFinite(v)).toBe(true);
    expect(test.some((_, k) => untimed[k * w] !== served[k * w])).toBe(true);
    // The prediction column alone, timed and not, is the features' column 0 exactly.
    const timedPredictions = stackedPredictions(a.tables, pick(data.userIds), pick(data.movieIds), pick(timestamps));
    const untimedPredictions = stackedPredictions(a.tables, pick(data.userIds), pick(data.movieIds));
    expect(Array.from(timedPredictions)).toEqual(test.map((_, k) => served[k * w]));
    expect(Array.from(untimedPredictions)).toEqual(test.map((_, k) => untimed[k * w]));
    expect(() => stackedPredictions(a.tables, [data.userIds[0]], [-7])).toThrow(/movieId -7/);
  });

  it("auto takes bayes up to AUTO_BAYES_MAX_TRAIN training ratings and als above", () => {
    expect(resolveOofModel("auto", AUTO_BAYES_MAX_TRAIN)).toBe("bayes");
    expect(resolveOofModel("auto", AUTO_BAYES_MAX_TRAIN + 1)).toBe("als");
    expect(resolveOofModel("als", 10)).toBe("als");
  });

  it("repeats exactly for a seed and changes with it", async () => {
    const data = generate(40, 30, 20, 0.3, 2);
    const a = await outOfFoldFeatures(data, split, opts);
    const b = await outOfFoldFeatures(data, split, opts);
    const c = await outOfFoldFeatures(data, split, { ...opts, seed: 12 });
    expect(Buffer.from(b.values.buffer).equals(Buffer.from(a.values.buffer))).toBe(true);
    expect(Buffer.from(c.values.buffer).equals(Buffer.from(a.values.buffer))).toBe(false);
    for (const v of a.values) expect(Number.isFinite(v)).toBe(true);
  });
});

describe("gibbsFit", () => {
  it("predicts held-out ratings to near the noise level", async () => {
    const noise = 0.3;
    const data = generate(150, 80, 40, noise, 3);
    const mask = splitMask(data.userIds, data.movieIds, split.seed, split.splitProp);
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < data.rows; i++) (mask[i] ? train : test).push(i);
    const index = (ids: Int32Array) => {
      const sorted = [...new Set(ids)].sort((x, y) => x - y);
      const map = new Map(sorted.map((v, i) => [v, i]));
      return { idx: Int32Array.from(ids, (v) => map.get(v) as number), n: sorted.length };
    };
    const us = index(data.userIds);
    const ms = index(data.movieIds);
    const fit = await gibbsFit(
      { userIdx: us.idx, itemIdx: ms.idx, ratings: data.ratings, nUsers: us.n, nItems: ms.n },
      Int32Array.from(train),
      Int32Array.from(test),
      { rank: 3, samples: 40, burnIn: 10, seed: 1 },
    );
    let se = 0;
    let spread = 0;
    let mean = 0;
    for (const i of test) mean += data.ratings[i] / test.length;
    test.forEach((i, k) => {
      se += (fit.predictions[k] - data.ratings[i]) ** 2;
      spread += (data.ratings[i] - mean) ** 2;
    });
    const rmse = Math.sqrt(se / test.length);
    // The ratings spread ~0.65 around their mean; the noise alone is 0.3.
    expect(rmse).toBeLessThan(0.6 * Math.sqrt(spread / test.length));
    expect(rmse).toBeLessThan(noise + 0.08);
  });
});
