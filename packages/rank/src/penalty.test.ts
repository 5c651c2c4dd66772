/**
 * The popularity penalty: B's column j divided by count_j^β, nothing else changed; with β > 0 the
 * lists of many users reach more of the catalogue and recommend less-rated items on average.
 */
import { splitMaskOf } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticRatingsDir } from "./__tests__/fixtures.js";
import { evaluateRanker, fitRanker, penalisePopularity, type RatingColumns } from "./fit.js";
import { Ranker } from "./ranker.js";

let root: string;
let cols: RatingColumns;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-rank-penalty-"));
  const dir = await syntheticRatingsDir(root, "ratings", { rows: 8000, users: 200, movies: 400, seed: 3 });
  cols = await readRatingsColumns(dir);
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("penalisePopularity", () => {
  it("divides each entry by its column item's training count to the power β", () => {
    const rows = { offsets: Int32Array.of(0, 2, 4), cols: Int32Array.of(0, 1, 0, 1), values: Float32Array.of(1, 2, 3, 4) };
    const modelItems = Int32Array.of(5, 7);
    const trainCounts = new Int32Array(8);
    trainCounts[5] = 16;
    trainCounts[7] = 4;
    penalisePopularity(rows, modelItems, trainCounts, 0.5);
    expect(Array.from(rows.values)).toEqual([1 / 4, 2 / 2, 3 / 4, 4 / 2]);
    const untouched = Float32Array.of(1, 2);
    penalisePopularity({ offsets: Int32Array.of(0, 2), cols: Int32Array.of(0, 1), values: untouched }, modelItems, trainCounts, 0);
    expect(Array.from(untouched)).toEqual([1, 2]);
  });

  it("widens the catalogue coverage of every user's list and lowers their popularity bias", () => {
    const mask = splitMaskOf({ kind: "hash", seed: 42, splitProp: 0.8 }, cols);
    const evaluate = (beta: number) => {
      const fit = fitRanker(cols, mask, { model: "ease", lambda: 50, maxItems: 400, neighbors: 0, popularityPenalty: beta });
      return evaluateRanker(new Ranker(fit.model), cols, mask, fit.train, { k: 10, minRating: 0, maxUsers: 1e9, seed: 42 });
    };
    const plain = evaluate(0);
    const penalised = evaluate(0.5);
    expect(penalised.coverage).toBeGreaterThan(plain.coverage);
    expect(penalised.popularityBias).toBeLessThan(plain.popularityBias);
  });
});
