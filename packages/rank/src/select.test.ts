/**
 * `auto` λ and β (select.ts) on generated data whose answer is known: where which items a user
 * rates is drawn from popularity alone (etl's lowrank kind), the choice goes to the largest λ
 * without a penalty; where users rate planted groups of items together, it goes to a small λ,
 * which EASE's item-item weights need. Also the validation cut and the half-standard-error rule.
 */
import { BadParameterError, InterruptedError, mulberry32, splitHash, splitMaskOf } from "@ms/contracts";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readRatingsColumns } from "@ms/etl";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticRatingsDir } from "./__tests__/fixtures.js";
import type { RatingColumns } from "./fit.js";
import { easeFits } from "./parallel.js";
import { AUTO_LAMBDAS, MIN_HISTORY, chooseTrial, selectEase, validationSplit, VALIDATION_SHARE, type EaseTrial } from "./select.js";

const AUTO = { lambda: "auto", penalty: "auto", maxItems: 300, neighbors: 0, k: 10, minRating: 0, maxUsers: 2000, seed: 42 } as const;
const maskOf = (cols: RatingColumns) => splitMaskOf({ kind: "hash", seed: 42, splitProp: 0.8 }, cols);

/** A Zipf draw over ids 1..items (weight 1/rank): the popular items every user also rates. */
function zipf(items: number, random: () => number): () => number {
  const cdf = new Float64Array(items);
  let total = 0;
  for (let i = 0; i < items; i++) cdf[i] = total += 1 / (i + 1);
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = items - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/**
 * 20 groups of 15 items; a user rates 30 items, 80% of them in their own group, the rest drawn by
 * popularity. Raw co-occurrence (what B tends to as λ grows) points every group at the popular
 * items; EASE at a small λ explains those away and finds the group.
 */
function plantedGroups(): RatingColumns {
  const random = mulberry32(11);
  const popular = zipf(300, random);
  const userIds: number[] = [];
  const movieIds: number[] = [];
  for (let u = 1; u <= 600; u++) {
    const seen = new Set<number>();
    while (seen.size < 30) seen.add(random() < 0.8 ? (u % 20) * 15 + 1 + Math.floor(random() * 15) : popular());
    for (const m of seen) {
      userIds.push(u);
      movieIds.push(m);
    }
  }
  return { userIds: Int32Array.from(userIds), movieIds: Int32Array.from(movieIds), ratings: new Float32Array(userIds.length).fill(4) };
}

let root: string;
let lowrank: RatingColumns;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-rank-select-"));
  // etl's lowrank kind: the movies a user rates are a popularity-weighted draw (packages/etl/src/synthetic.ts).
  lowrank = await readRatingsColumns(await syntheticRatingsDir(root, "lowrank", { rows: 20_000, users: 400, movies: 500 }));
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("validationSplit", () => {
  it("holds out a fifth of each user's training items, none of a short history, the same for a seed", () => {
    const cols = plantedGroups();
    const mask = maskOf(cols);
    const { part, fitMask } = validationSplit(cols, mask, 42);
    expect(part.userIds.length).toBe(mask.reduce((a, b) => a + b, 0));
    const perUser = new Map<number, [number, number]>();
    for (let i = 0; i < part.userIds.length; i++) {
      const c = perUser.get(part.userIds[i]) ?? [0, 0];
      c[fitMask[i]]++;
      perUser.set(part.userIds[i], c);
    }
    for (const [held, kept] of perUser.values()) {
      const n = held + kept;
      expect(held).toBe(n < MIN_HISTORY ? 0 : Math.floor(n * VALIDATION_SHARE));
    }
    expect(validationSplit(cols, mask, 42).fitMask).toEqual(fitMask);
    expect(validationSplit(cols, mask, 43).fitMask).not.toEqual(fitMask);
  });

  it("with maxUsers, only the users the evaluation scores (its hash of the user id) give validation rows", () => {
    const cols = plantedGroups();
    const mask = maskOf(cols);
    const all = validationSplit(cols, mask, 42);
    const capped = validationSplit(cols, mask, 42, 25);
    const heldBy = (fitMask: Uint8Array) => {
      const users = new Set<number>();
      for (let i = 0; i < fitMask.length; i++) if (fitMask[i] === 0) users.add(capped.part.userIds[i]);
      return users;
    };
    const users = heldBy(capped.fitMask);
    expect(users.size).toBe(25);
    const eligible = [...heldBy(all.fitMask)].sort((a, b) => splitHash(a, 0, 42) - splitHash(b, 0, 42) || a - b);
    expect([...users].sort((a, b) => a - b)).toEqual(eligible.slice(0, 25).sort((a, b) => a - b));
    // Those users' cut is the uncapped one; everyone else keeps every item in the fit part.
    for (let i = 0; i < capped.fitMask.length; i++) expect(capped.fitMask[i]).toBe(users.has(capped.part.userIds[i]) ? all.fitMask[i] : 1);
  });
});

describe("selectEase", () => {
  it("goes to the largest λ and no penalty where only popularity decides what users rate", async () => {
    const s = await selectEase(lowrank, maskOf(lowrank), AUTO);
    expect(s.lambda).toBe(AUTO_LAMBDAS[AUTO_LAMBDAS.length - 1]);
    expect(s.penalty).toBe(0);
    // Popularity itself wins outright there: the EASE candidate closest to it is kept (select.ts, 4.).
    expect(s.popularityBest).toBe(true);
    const ease = s.trials.filter((t) => t.model === "ease");
    expect(s.trials[s.chosen].ndcg).toBe(Math.max(...ease.map((t) => t.ndcg)));
    expect(s.trials).toHaveLength(AUTO_LAMBDAS.length * 4 + 1);
    expect(s.users).toBeGreaterThan(300);
    // Deterministic for a seed.
    expect(await selectEase(lowrank, maskOf(lowrank), AUTO)).toMatchObject({ lambda: s.lambda, penalty: s.penalty, trials: s.trials });
  });

  it("chooses the same on two worker threads as on one, every trial's scores equal", async () => {
    // The built worker must be there, or easeFits would run on this thread and compare it with itself.
    expect(existsSync(fileURLToPath(new URL("../dist/worker.js", import.meta.url)))).toBe(true);
    const cols = plantedGroups();
    const { seconds: _a, ...one } = await selectEase(cols, maskOf(cols), AUTO);
    const { seconds: _b, ...two } = await selectEase(cols, maskOf(cols), { ...AUTO, threads: 2 });
    expect(two).toEqual(one);
  });

  it("rejects as interrupted when the signal aborts during the fits", async () => {
    const cols = plantedGroups();
    const abort = new AbortController();
    const running = selectEase(cols, maskOf(cols), { ...AUTO, threads: 2 }, abort.signal);
    abort.abort();
    await expect(running).rejects.toBeInstanceOf(InterruptedError);
  });

  it("goes to a small λ, well above popularity, where users rate planted groups of items together", async () => {
    const cols = plantedGroups();
    const s = await selectEase(cols, maskOf(cols), AUTO);
    expect(s.lambda).toBeLessThanOrEqual(200);
    expect(s.popularityBest).toBe(false);
    const popularity = s.trials.find((t) => t.model === "popularity");
    expect(s.trials[s.chosen].ndcg).toBeGreaterThan(2 * (popularity?.ndcg ?? 1));
  });

  it("searches only the parameter left auto", async () => {
    const cols = plantedGroups();
    const s = await selectEase(cols, maskOf(cols), { ...AUTO, lambda: 300 });
    expect(s.lambda).toBe(300);
    expect(new Set(s.trials.filter((t) => t.model === "ease").map((t) => t.lambda))).toEqual(new Set([300]));
    expect((await selectEase(cols, maskOf(cols), { ...AUTO, penalty: 0.15 })).penalty).toBe(0.15);
  });
});

describe("easeFits", () => {
  // G = -5 I: λ = 1 leaves a negative pivot, λ = 100 does not.
  const gram = Float64Array.of(-5, 0, 0, -5);
  for (const threads of [1, 2])
    it(`names rank_lambda and the λ that leaves G + λI singular (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      const fitted: number[] = [];
      const run = easeFits(gram, 2, [100, 1], 0, Int32Array.of(10, 20), (i) => fitted.push(i), threads);
      await expect(run).rejects.toBeInstanceOf(BadParameterError);
      await expect(run).rejects.toThrow(/rank_lambda.*\b1 leaves X\^T X \+ λI numerically singular/);
      // On one thread λ = 100 is fitted first; on two the failing lane may stop the other before it ends.
      expect(fitted).toEqual(threads === 1 ? [0] : fitted.filter((i) => i === 0));
      expect([...gram]).toEqual([-5, 0, 0, -5]);
    });
});

describe("chooseTrial", () => {
  const trial = (model: EaseTrial["model"], ndcg: number, coverage: number): EaseTrial => ({
    model,
    lambda: 1,
    penalty: 0,
    ndcg,
    coverage,
    se: 0,
  });
  const users = (...x: number[]) => Float64Array.from(x);

  it("takes the widest coverage among the candidates within half a paired standard error of the best", () => {
    const trials = [trial("ease", 0.5, 0.1), trial("ease", 0.48, 0.3), trial("ease", 0.3, 0.9), trial("popularity", 0.2, 0.01)];
    // Candidate 1 trails the best by 0.02 with a noisy per-user difference; candidate 2 by 0.2 on every user.
    const per = [users(0.6, 0.4, 0.6, 0.4), users(0.4, 0.56, 0.5, 0.46), users(0.4, 0.2, 0.4, 0.2), users(0.2, 0.2, 0.2, 0.2)];
    expect(chooseTrial(trials, per)).toEqual({ chosen: 1, popularityBest: false });
    expect(trials[0].se).toBe(0);
    expect(trials[1].se).toBeGreaterThan(0.02);
    expect(trials[2].se).toBeCloseTo(0, 6);
  });

  it("passes over a wider candidate within one paired standard error of the best but not within half of one", () => {
    const trials = [trial("ease", 0.5, 0.1), trial("ease", 0.44, 0.3)];
    // Candidate 1 trails by 0.06 with a paired standard error of 0.063: inside one, outside half.
    const per = [users(0.6, 0.4, 0.6, 0.4), users(0.4, 0.5, 0.5, 0.36)];
    expect(chooseTrial(trials, per)).toEqual({ chosen: 0, popularityBest: false });
    expect(trials[1].se).toBeGreaterThan(0.06);
    expect(trials[1].se / 2).toBeLessThan(0.06);
  });

  it("keeps the best EASE candidate when popularity wins outright", () => {
    const trials = [trial("ease", 0.3, 0.2), trial("ease", 0.35, 0.1), trial("popularity", 0.5, 0.01)];
    const per = [users(0.3, 0.3), users(0.35, 0.35), users(0.5, 0.5)];
    expect(chooseTrial(trials, per)).toEqual({ chosen: 1, popularityBest: true });
  });
});
