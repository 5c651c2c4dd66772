/**
 * The als step under each evaluation protocol: kfold tests exactly one fold and records the spec
 * in the factors manifest; split=file scores test rows of unseen users and movies by the
 * cold-start rule instead of dropping them from the test error.
 */
import { ColdStartRule, foldOf, readManifest, splitMaskOf } from "@ms/contracts";
import { etl, readRatingsColumns, resolveEtlParams, writeSyntheticRatings } from "@ms/etl";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { als } from "./als.js";
import { resolveAlsParams, type AlsStepParams } from "./params.js";

let root: string;
let csv: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-split-"));
  csv = path.join(root, "ratings.csv");
  writeSyntheticRatings(csv, { seed: 1, rows: 6000, users: 120, movies: 150 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const quick = (o: Partial<AlsStepParams>) => resolveAlsParams({ als_rank: 4, als_max_iter: 3, als_num_threads: 1, ...o });

describe("als split=kfold", () => {
  it("tests the ratings of fold `fold` and records the whole spec", async () => {
    const ratings = path.join(root, "kfold-ratings");
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, split: "kfold" }), ratings);
    const cols = await readRatingsColumns(ratings);
    const inFold2 = cols.userIds.filter((u, i) => foldOf(u, cols.movieIds[i], 42, 3) === 2).length;
    const out = path.join(root, "kfold-factors");
    const result = await als({ ratings }, quick({ split: "kfold", folds: 3, fold: 2 }), out);
    expect(result.metrics.test_nrows).toBe(inFold2);
    expect(result.metrics.training_nrows).toBe(cols.rows - inFold2);
    const manifest = await readManifest(out, "factors");
    expect(manifest.details).toMatchObject({ split: { kind: "kfold", seed: 42, splitProp: 0.8, folds: 3, fold: 2 } });
  });

  it("refuses split=kfold without a fold, naming fold", () => {
    expect(() => quick({ split: "kfold" })).toThrow(/fold/);
  });
});

describe("als split=file", () => {
  it("counts test rows of unseen users and movies and scores them by the cold-start rule", async () => {
    const test = path.join(root, "test.csv");
    // userId 100001 is unseen; movieId 900001 is unseen; (1, 2) and (2, 3) are warm if not in the main file.
    const cols0 = await readRatingsColumns(
      (await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), path.join(root, "plain"))).outputs.ratings.dir,
    );
    const seen = new Set(Array.from(cols0.userIds, (u, i) => `${u}:${cols0.movieIds[i]}`));
    const users = [...new Set(cols0.userIds)];
    const movies = [...new Set(cols0.movieIds)];
    const warm: string[] = [];
    for (let k = 0; warm.length < 3; k++) {
      const [u, m] = [users[k % users.length], movies[(k * 7) % movies.length]];
      if (!seen.has(`${u}:${m}`)) warm.push(`${u},${m},3.5,100`);
    }
    const cold = [`100001,${movies[0]},4,100`, `100001,${movies[1]},1,100`, `${users[0]},900001,5,100`];
    await writeFile(test, `userId,movieId,rating,timestamp\n${[...cold, ...warm].join("\n")}\n`);
    const ratings = path.join(root, "file-ratings");
    await etl({ ratingsCsv: csv, testRatings: test }, resolveEtlParams({ max_row_limit: -1, split: "file", test_ratings: test }), ratings);
    const out = path.join(root, "file-factors");
    const result = await als({ ratings }, quick({ split: "file" }), out);
    expect(result.metrics).toMatchObject({ test_nrows: 6, test_cold_rows: 3, training_nrows: cols0.rows });

    // The expected error, from the published factors and the rule, over all six test rows.
    const cols = await readRatingsColumns(ratings);
    const mask = splitMaskOf({ kind: "file", seed: 42, splitProp: 0.8 }, cols);
    const rule = new ColdStartRule(cols, mask);
    const { predict } = await import("./predict.js");
    const testRows = [...mask.keys()].filter((i) => mask[i] === 0);
    let sse = 0;
    const warmRows = testRows.filter((i) => cols.userIds[i] !== 100001 && cols.movieIds[i] !== 900001);
    const pred = await predict(
      out,
      Int32Array.from(warmRows, (i) => cols.userIds[i]),
      Int32Array.from(warmRows, (i) => cols.movieIds[i]),
    );
    warmRows.forEach((i, k) => {
      sse += (pred[k] - cols.ratings[i]) ** 2;
    });
    for (const i of testRows) if (!warmRows.includes(i)) sse += (rule.predict(cols.userIds[i], cols.movieIds[i]) - cols.ratings[i]) ** 2;
    expect(result.metrics.test_mse).toBeCloseTo(sse / 6, 5);
    // The file split's key is not a time key: split=time on these ratings is refused, naming split.
    await expect(als({ ratings }, quick({ split: "time" }), path.join(root, "time-on-file"))).rejects.toThrow(
      /split=file; rerun etl with -P split=time/,
    );
  });
});
