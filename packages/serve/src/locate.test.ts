/**
 * Finding a run and its models: `locateRun` takes the latest finished `ms run` of a file tracking
 * store (or `runId`, a child meaning its parent) and checks each child's entry in the given
 * store: missing is exit 4, damaged exit 5. `modelDirs` names the entries a model kind needs, and
 * `predictRatings` answers from them, a pair with an unknown id by the run's cold-start rule.
 */
import { predictWith, readFactors } from "@ms/als";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { ColdStartRule, createLogger, exitCodeFor, splitMaskOf } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { locateRun, modelDirs, type LocateOptions } from "./locate.js";
import { splitOfRun } from "./batch.js";
import { predictRatings } from "./predict.js";
import { fixture, RATINGS, trackRun, type Fixture } from "./__tests__/fixture.js";

let fx: Fixture;
let where: LocateOptions;
beforeAll(async () => {
  fx = await fixture();
  where = { entries: fx.store, trackingUri: fx.mlruns, env: {} };
});
afterAll(async () => fx.dispose());

describe("locateRun", () => {
  it("finds the latest finished run and its verified entries, in step order", async () => {
    const run = await locateRun(where);
    expect(run.runId).toBe(fx.parentRunId);
    expect(run.entries.map((e) => [e.step, e.key, e.dir])).toEqual(fx.entries.map((e) => [e.step, e.key, e.dir]));
    expect((await locateRun({ ...where, runId: fx.entries[1].runId })).runId).toBe(fx.parentRunId);
  });

  it("an entry the cache no longer has is exit 4; a damaged one exit 5", async () => {
    const hit = fx.store.answers.get("k-als")!;
    try {
      fx.store.answers.delete("k-als");
      const missing = await locateRun(where).catch((e: unknown) => e);
      expect(exitCodeFor(missing)).toBe(4);
      expect((missing as Error).message).toMatch(/its als entry .*k-als is not in the cache .*rerun 'ms run'/);
      fx.store.answers.set("k-als", { status: "damaged", problems: ["user_factors.parquet: size differs"] });
      const damaged = await locateRun(where).catch((e: unknown) => e);
      expect(exitCodeFor(damaged)).toBe(5);
      expect((damaged as Error).message).toContain("user_factors.parquet: size differs");
    } finally {
      fx.store.answers.set("k-als", hit);
    }
  });

  it("a newest run whose meta.yaml is damaged is passed over out loud, and --run on it never falls back", async () => {
    const newer = await trackRun(fx.mlruns, fx.entries);
    const meta = path.join(fx.mlruns, "0", newer.parent, "meta.yaml");
    // Cut short, as a crash or a full disk leaves it: the run must not pass for an older one's answer.
    const text = await readFile(meta, "utf8");
    await writeFile(meta, text.slice(0, Math.floor(text.length / 2)));
    const lines: string[] = [];
    const logger = createLogger({
      level: "warn",
      pretty: false,
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    const run = await locateRun({ ...where, logger });
    expect(run.runId).toBe(fx.parentRunId);
    expect(lines.join("")).toContain(
      `answering from run ${fx.parentRunId}, the newest finished run that can be read; passed over run ${newer.parent}`,
    );
    const asked = await locateRun({ ...where, runId: newer.parent }).catch((e: unknown) => e);
    expect(exitCodeFor(asked)).toBe(5);
    expect((asked as Error).message).toContain(meta);
  });

  it("protects each entry (a read lease against ms cache gc) before it checks it", async () => {
    const order: string[] = [];
    const protectedKeys = new Set<string>();
    const entries = {
      ...fx.store,
      protect: async (key: string) => {
        order.push(`protect ${key}`);
        protectedKeys.add(key);
      },
      checkEntry: async (key: string) => {
        order.push(protectedKeys.has(key) ? `check ${key}` : `check ${key} UNPROTECTED`);
        return fx.store.checkEntry(key);
      },
    };
    await locateRun({ ...where, entries });
    expect(order).toEqual(fx.entries.flatMap((e) => [`protect ${e.key}`, `check ${e.key}`]));
  });

  it("an unknown run id is a parameter error naming --run", async () => {
    await expect(locateRun({ ...where, runId: "0".repeat(32) })).rejects.toThrow(/--run/);
  });
});

describe("modelDirs", () => {
  it("names the factors and ratings of the ALS model; a run without a keras model has none (exit 4)", async () => {
    const run = await locateRun(where);
    expect(modelDirs(run, "als")).toEqual({ factors: fx.factorsDir, ratings: fx.entries[0].dir, raw: undefined });
    const error = (() => {
      try {
        return modelDirs(run, "keras");
      } catch (e) {
        return e;
      }
    })();
    expect(exitCodeFor(error)).toBe(4);
  });
});

describe("predictRatings", () => {
  it("scores pairs with the run's ALS model", async () => {
    const pairs = [
      { userId: 3, movieId: 20 },
      { userId: 8, movieId: 40 },
    ];
    const result = await predictRatings({ ...where, pairs, model: "als" });
    const expected = predictWith(await readFactors(fx.factorsDir), Int32Array.from([3, 8]), Int32Array.from([20, 40]));
    expect(result.runId).toBe(fx.parentRunId);
    expect(result.predictions).toEqual(pairs.map((p, i) => ({ ...p, rating: Number(expected[i].toFixed(4)) })));
  });

  it("scores a pair with an id the model has no factors for by the run's cold-start rule, marked cold", async () => {
    const pairs = [
      { userId: 4, movieId: 10 },
      { userId: 3, movieId: 11 },
      { userId: 4, movieId: 11 },
      { userId: 3, movieId: 20 },
    ];
    const result = await predictRatings({ ...where, pairs, model: "als" });
    const rule = new ColdStartRule(RATINGS, splitMaskOf(splitOfRun(await locateRun(where)), RATINGS));
    expect(result.predictions.map((p) => p.cold)).toEqual(["user", "movie", "user+movie", undefined]);
    for (const p of result.predictions.slice(0, 3)) expect(p.rating).toBe(Number(rule.predict(p.userId, p.movieId).toFixed(4)));
    // The rule is the training mean plus the known side's bias: three different numbers here.
    expect(new Set(result.predictions.slice(0, 3).map((p) => p.rating)).size).toBe(3);
    await expect(predictRatings({ ...where, pairs: [] })).rejects.toThrow(/--pairs/);
  });
});
