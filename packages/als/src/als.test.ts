/**
 * The als step end to end on real files (etl-made ratings artifacts and hand-made Parquet):
 * convergence, determinism, reload and re-score, cold start, and every bad input leaving no
 * output behind. Runs single-threaded; thread-count invariance is in threads.slow.test.ts.
 */
import {
  BadInputError,
  BadParameterError,
  digestFile,
  exitCodeFor,
  InterruptedError,
  isTraining,
  MemoryMetrics,
  MissingArtifactError,
  readManifest,
  splitMask,
} from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFactors } from "./adapter.js";
import { als } from "./als.js";
import { resolveAlsParams, type AlsStepParams } from "./params.js";
import { smallRatings, syntheticRatingsDir, writeRatingsParquet } from "./__tests__/fixtures.js";
import { predict } from "./predict.js";

let root: string;
let ratingsDir: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-step-"));
  ratingsDir = await syntheticRatingsDir(root, "synth", { rows: 20_000, users: 300, movies: 400 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Resolved parameters of a quick fit, with `o` on top. */
const fit = (o: Partial<AlsStepParams> = {}) => resolveAlsParams({ als_num_threads: 1, als_max_iter: 6, ...o });

describe("als step", () => {
  it("converges: the training objective decreases every iteration", async () => {
    const metrics = new MemoryMetrics();
    const out = path.join(root, "conv");
    const result = await als({ ratings: ratingsDir }, fit({ als_max_iter: 10 }), out, { metrics });
    const series = metrics.values.filter((v) => v.key === "train_loss");
    expect(series.map((v) => v.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (let i = 1; i < series.length; i++) expect(series[i].value).toBeLessThanOrEqual(series[i - 1].value * (1 + 1e-7));
    expect(series[9].value).toBeLessThan(series[0].value * 0.9);
    expect(result.metrics.train_loss).toBe(series[9].value);
    // The loss includes the regularisation, so it exceeds the training MSE.
    expect(result.metrics.train_loss).toBeGreaterThan(result.metrics.train_mse);
    expect(result.metrics.test_rmse).toBeLessThan(1.2);
  });

  it("publishes exactly the contract's files and a manifest with the split and rank", async () => {
    const out = path.join(root, "files");
    const result = await als({ ratings: ratingsDir }, fit(), out);
    expect((await readdir(out)).sort()).toEqual(["item_factors.parquet", "manifest.json", "user_factors.parquet"]);
    expect(result.paths).toEqual({
      userFactors: path.join(out, "user_factors.parquet"),
      itemFactors: path.join(out, "item_factors.parquet"),
    });
    const m = result.manifest;
    expect(m.kind).toBe("factors");
    expect(m.details).toMatchObject({ rank: 12, seed: 42, splitProp: 0.8, coldStartStrategy: "drop", ratings: { rows: 20_000 } });
    expect(m.params).toMatchObject({ als_rank: 12, als_max_iter: 6, als_reg_param: 0.1 });
    expect(result.outputs.factors).toEqual({ kind: "factors", dir: out, digest: m.digest });
    const cols = await readRatingsColumns(ratingsDir);
    const mask = splitMask(cols.userIds, cols.movieIds, 42, 0.8);
    const trainRows = mask.reduce((a, b) => a + b, 0);
    expect(result.metrics.training_nrows).toBe(trainRows);
    expect(result.metrics.test_nrows).toBe(20_000 - trainRows);
  });

  it("is deterministic for a seed and differs for another seed", async () => {
    const a = await als({ ratings: ratingsDir }, fit(), path.join(root, "det-a"));
    const b = await als({ ratings: ratingsDir }, fit(), path.join(root, "det-b"));
    const c = await als({ ratings: ratingsDir }, fit({ seed: 7 }), path.join(root, "det-c"));
    expect(b.manifest.digest).toBe(a.manifest.digest);
    expect(b.metrics.test_mse).toBe(a.metrics.test_mse);
    expect(c.manifest.digest).not.toBe(a.manifest.digest);
  });

  it("reloads the factors and re-scores to the same metrics, bit for bit", async () => {
    const out = path.join(root, "rescore");
    const result = await als({ ratings: ratingsDir }, fit(), out);
    const cols = await readRatingsColumns(ratingsDir);
    const factors = await readFactors(out);
    expect(factors.rank).toBe(12);
    const pred = await predict(out, cols.userIds, cols.movieIds);
    const mask = splitMask(cols.userIds, cols.movieIds, factors.details.seed, factors.details.splitProp);
    const sse = [0, 0];
    const n = [0, 0];
    for (let i = 0; i < cols.rows; i++) {
      if (Number.isNaN(pred[i])) continue;
      const e = pred[i] - cols.ratings[i];
      sse[mask[i]] += e * e;
      n[mask[i]]++;
    }
    expect(sse[1] / n[1]).toBe(result.metrics.train_mse);
    expect(sse[0] / n[0]).toBe(result.metrics.test_mse);
    expect(n[0]).toBe(result.metrics.test_nrows - result.metrics.test_cold_start_nrows);
  });

  it("cold start: 'drop' leaves cold test rows out, 'nan' makes the test metrics NaN", async () => {
    const base = smallRatings(40, 30);
    // A user and a movie whose only rating falls in the test split: no factors for either.
    let coldMovie = 5000;
    while (isTraining(999, coldMovie, 42, 0.8)) coldMovie++;
    const rows = { userIds: [...base.userIds, 999], movieIds: [...base.movieIds, coldMovie], ratings: [...base.ratings, 4] };
    const file = path.join(root, "cold.parquet");
    await writeRatingsParquet(file, rows);
    const drop = await als({ ratings: file }, fit({ als_cold_start_strategy: "drop" }), path.join(root, "cold-drop"));
    const nan = await als({ ratings: file }, fit({ als_cold_start_strategy: "nan" }), path.join(root, "cold-nan"));
    expect(drop.metrics.test_cold_start_nrows).toBeGreaterThanOrEqual(1);
    expect(Number.isFinite(drop.metrics.test_mse)).toBe(true);
    expect(Number.isNaN(nan.metrics.test_mse)).toBe(true);
    expect(Number.isNaN(nan.metrics.test_rmse)).toBe(true);
    expect(nan.metrics.train_mse).toBe(drop.metrics.train_mse);
    const pred = await predict(path.join(root, "cold-nan"), [999, 1], [coldMovie, 100]);
    expect(Number.isNaN(pred[0])).toBe(true);
    expect(Number.isFinite(pred[1])).toBe(true);
    expect(nan.manifest.details.coldStartStrategy).toBe("nan");
  });

  it("solves non-negative factors when asked", async () => {
    const result = await als({ ratings: ratingsDir }, fit({ als_nonnegative: true }), path.join(root, "nonneg"));
    const f = await readFactors(path.join(root, "nonneg"));
    expect(f.userFactors.every((v) => v >= 0)).toBe(true);
    expect(f.itemFactors.every((v) => v >= 0)).toBe(true);
    expect(f.itemFactors.some((v) => v > 0)).toBe(true);
    expect(result.metrics.test_rmse).toBeLessThan(1.3);
  });
});

describe("no NaN or infinite output", () => {
  it("als_reg_param 0 with a row rated fewer times than the rank is refused before the fit, naming als_reg_param and the row; nothing is published", async () => {
    const parent = path.join(root, "reg0");
    await mkdir(parent, { recursive: true });
    const out = path.join(parent, "out");
    const attempt = als({ ratings: ratingsDir }, fit({ als_reg_param: 0 }), out);
    await expect(attempt).rejects.toThrow(BadParameterError);
    await expect(als({ ratings: ratingsDir }, fit({ als_reg_param: 0 }), out)).rejects.toThrow(
      /parameter als_reg_param: 0 leaves the normal equations of \d+ users and \d+ movies singular: each needs at least rank \(12\) .*(userId|movieId) \d+ has \d+/,
    );
    expect(await readdir(parent)).toEqual([]);
  });

  it("als_reg_param 0 is fitted when every row has at least rank ratings, and the factors are finite", async () => {
    const file = path.join(root, "dense.parquet");
    await writeRatingsParquet(file, smallRatings(30, 30));
    const result = await als({ ratings: file }, fit({ als_rank: 3, als_reg_param: 0 }), path.join(root, "reg0-dense"));
    const f = await readFactors(path.join(root, "reg0-dense"));
    expect(f.userFactors.every(Number.isFinite) && f.itemFactors.every(Number.isFinite)).toBe(true);
    expect(Object.values(result.metrics).every(Number.isFinite)).toBe(true);
  });

  it("a split that leaves no test rating to score is refused naming split_prop instead of publishing test_mse NaN", async () => {
    // Every rating of these users falls in the training split: the test part is empty.
    const rows = { userIds: [] as number[], movieIds: [] as number[], ratings: [] as number[] };
    for (let u = 1; u <= 80; u++) {
      if (!isTraining(u, 1, 42, 0.8) || !isTraining(u, 2, 42, 0.8)) continue;
      rows.userIds.push(u, u);
      rows.movieIds.push(1, 2);
      rows.ratings.push(1 + (u % 5), 5 - (u % 4));
    }
    const file = path.join(root, "notest.parquet");
    await writeRatingsParquet(file, rows);
    const out = path.join(root, "notest-out");
    await expect(als({ ratings: file }, fit({ als_rank: 2 }), out)).rejects.toThrow(/parameter split_prop: the test part is empty/);
    expect(existsSync(out)).toBe(false);
  });

  it("test ratings that all lack factors (every user rated one movie) are bad input, exit 3, not advice to lower split_prop", async () => {
    // One rating per user: a test row's user never has a training rating, whatever the split.
    const rows = { userIds: [] as number[], movieIds: [] as number[], ratings: [] as number[] };
    for (let u = 1; u <= 60; u++) {
      rows.userIds.push(u);
      rows.movieIds.push(1 + (u % 3));
      rows.ratings.push(1 + (u % 5));
    }
    const file = path.join(root, "onerating.parquet");
    await writeRatingsParquet(file, rows);
    const out = path.join(root, "onerating-out");
    const error = await als({ ratings: file }, fit({ als_rank: 2 }), out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadInputError);
    expect(exitCodeFor(error)).toBe(3);
    expect((error as Error).message).toMatch(
      /none of the (\d+) test ratings can be scored: \1 of them have a user or movie with no rating in the training part/,
    );
    expect((error as Error).message).not.toMatch(/lower split_prop/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("signals", () => {
  it("an abort during the fit ends the step with InterruptedError (the signal's reason) and publishes nothing", async () => {
    const parent = path.join(root, "abort");
    await mkdir(parent, { recursive: true });
    const controller = new AbortController();
    const metrics = { metric: (key: string) => key === "train_loss" && controller.abort(new InterruptedError("stop here")) };
    const attempt = als({ ratings: ratingsDir }, fit({ als_num_threads: 2, als_max_iter: 50, als_rank: 40 }), path.join(parent, "out"), {
      metrics,
      signal: controller.signal,
    });
    await expect(attempt).rejects.toThrow(/stop here/);
    await expect(attempt).rejects.toBeInstanceOf(InterruptedError);
    expect(await readdir(parent)).toEqual([]);
  });

  it("an abort with no reason still ends with InterruptedError (exit 130), not an AbortError", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(als({ ratings: ratingsDir }, fit(), path.join(root, "abort-plain"), { signal: controller.signal })).rejects.toBeInstanceOf(
      InterruptedError,
    );
    expect(existsSync(path.join(root, "abort-plain"))).toBe(false);
  });
});

describe("manifest", () => {
  it("records the digest of the ratings artifact and the sha256 of its Parquet file", async () => {
    const out = path.join(root, "digests");
    const result = await als({ ratings: ratingsDir }, fit(), out);
    const etlManifest = await readManifest(ratingsDir, "ratings");
    const fileDigest = (await digestFile(path.join(ratingsDir, "ratings.parquet"))).digest;
    expect(result.manifest.details.ratings).toEqual({ digest: etlManifest.digest, fileDigest, rows: 20_000 });
    const bare = await als({ ratings: path.join(ratingsDir, "ratings.parquet") }, fit(), path.join(root, "digests-bare"));
    expect(bare.manifest.details.ratings).toEqual({ digest: fileDigest, fileDigest, rows: 20_000 });
  });
});

describe("bad parameters", () => {
  it.each([
    [{ als_rank: 0 }, "als_rank"],
    [{ als_rank: 2.5 }, "als_rank"],
    [{ als_max_iter: 0 }, "als_max_iter"],
    [{ als_max_iter: 1e9 }, "als_max_iter"],
    [{ als_reg_param: -0.1 }, "als_reg_param"],
    [{ als_reg_param: Number.NaN }, "als_reg_param"],
    [{ split_prop: 0 }, "split_prop"],
    [{ split_prop: 1 }, "split_prop"],
    [{ split_prop: 1.5 }, "split_prop"],
    [{ als_cold_start_strategy: "skip" as "drop" }, "als_cold_start_strategy"],
    [{ als_num_threads: 0 }, "als_num_threads"],
    [{ seed: 0.5 }, "seed"],
  ])("%o is refused, naming %s", (partial, name) => {
    expect(() => resolveAlsParams(partial)).toThrow(BadParameterError);
    expect(() => resolveAlsParams(partial)).toThrow(`parameter ${name}:`);
  });

  it("defaults are the seed's", () => {
    expect(resolveAlsParams({ als_num_threads: 2 })).toMatchObject({
      als_rank: 12,
      als_max_iter: 10,
      als_reg_param: 0.1,
      split_prop: 0.8,
      seed: 42,
      als_cold_start_strategy: "drop",
      als_nonnegative: false,
      als_num_threads: 2,
      als_engine: "local",
    });
  });

  it("refuses a name the schema does not have, suggesting the closest", () => {
    expect(() => resolveAlsParams({ max_iter: 3 } as Partial<AlsStepParams>)).toThrow(
      /parameter max_iter: unknown parameter; did you mean als_max_iter\?/,
    );
  });
});

describe("bad input", () => {
  async function expectRefused(ratings: string, name: string, error: new (...args: never[]) => Error, pattern: RegExp): Promise<void> {
    const parent = path.join(root, `bad-${name}`);
    await mkdir(parent, { recursive: true });
    const out = path.join(parent, "out");
    const attempt = als({ ratings }, fit(), out);
    await expect(attempt).rejects.toThrow(error);
    await expect(als({ ratings }, fit(), out)).rejects.toThrow(pattern);
    expect(await readdir(parent)).toEqual([]);
  }

  it("empty ratings", async () => {
    const file = path.join(root, "empty.parquet");
    await writeRatingsParquet(file, { userIds: [], movieIds: [], ratings: [] });
    await expectRefused(file, "empty", BadInputError, /empty\.parquet: no ratings rows/);
  });

  it("a single user", async () => {
    const file = path.join(root, "single.parquet");
    await writeRatingsParquet(file, { userIds: Array(40).fill(7), movieIds: [...Array(40).keys()], ratings: Array(40).fill(3) });
    await expectRefused(file, "single", BadInputError, /single\.parquet: .*single user \(userId 7\)/);
  });

  it("NaN ratings in a Parquet file", async () => {
    const rows = smallRatings(20, 20);
    rows.ratings[17] = Number.NaN;
    const file = path.join(root, "nan.parquet");
    await writeRatingsParquet(file, rows);
    await expectRefused(file, "nan", BadInputError, /nan\.parquet: row 18: rating is NaN/);
  });

  it("a file that is not Parquet", async () => {
    const file = path.join(root, "ratings.csv");
    await writeFile(file, "userId,movieId,rating,timestamp\n1,2,3,4\n");
    await expectRefused(file, "csv", BadInputError, /ratings\.csv: not a readable Parquet file/);
  });

  it("a Parquet file with the wrong schema", async () => {
    const file = path.join(root, "schema.parquet");
    await writeRatingsParquet(file, smallRatings(5, 5), { movieId: "VARCHAR" });
    await expectRefused(file, "schema", BadInputError, /schema\.parquet: wrong schema: column movieId/);
  });

  it("a missing input, and a directory that is not a ratings artifact", async () => {
    await expectRefused(path.join(root, "nowhere"), "missing", MissingArtifactError, /nowhere/);
    const notArtifact = path.join(root, "plain-dir");
    await mkdir(notArtifact, { recursive: true });
    await expectRefused(notArtifact, "plain", MissingArtifactError, /no manifest/);
  });

  it("never overwrites a directory that is not an earlier factors output", async () => {
    const out = path.join(root, "precious");
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, "notes.txt"), "mine");
    await expect(als({ ratings: ratingsDir }, fit(), out)).rejects.toThrow(/refusing to overwrite/);
    expect(await readdir(out)).toEqual(["notes.txt"]);
  });
});
