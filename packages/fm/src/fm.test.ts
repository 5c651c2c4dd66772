/**
 * The fm step on small generated data through the real etl and als steps: the artifact it
 * publishes round-trips to the in-memory out-of-fold features and full fit, its metrics follow
 * from what it wrote, fields added to StackedTables flow through, damaged files are refused naming
 * them, and each fit is reported as "fit i/N" with an ETA from the fits measured so far.
 */
import { BadParameterError, CorruptArtifactError, createLogger, MemoryMetrics, MissingArtifactError, splitMask } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFixture, type Fixture } from "./__tests__/fixtures.js";
import { fitProgress } from "./fm.js";
import { readFactors, splitOfFactors } from "@ms/als";
import {
  FM_DEFAULTS,
  fm,
  fmStep,
  outOfFoldFeatures,
  readFmArtifact,
  resolveFmParams,
  writeFmArtifact,
  type FmParams,
  type StackedTables,
} from "./index.js";

let fx: Fixture;
const SMALL = { fm_max_samples: 12, fm_burn_in: 3, fm_rank: 3, fm_folds: 3, fm_num_threads: 1 } as const;
const out = (name: string) => path.join(fx.root, name);
const run = (name: string, params: Partial<FmParams> = {}, ctx = {}) =>
  fm({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveFmParams({ ...SMALL, ...params }), out(name), ctx);

beforeAll(async () => {
  fx = await writeFixture();
});
afterAll(async () => {
  if (fx) await fs.rm(fx.root, { recursive: true, force: true });
});

describe("the fm step", () => {
  it("publishes the out-of-fold features, the train mask, the full fit and its test predictions, as computed in memory", async () => {
    const metrics = new MemoryMetrics();
    const { manifest } = await run("bayes", { fm_model: "bayes" }, { metrics });
    const read = await readFmArtifact(out("bayes"));
    const ratings = await readRatingsColumns(fx.ratingsDir);
    const factors = await readFactors(fx.factorsDir);
    const split = splitOfFactors(factors.details);
    const oof = await outOfFoldFeatures(ratings, split, {
      model: "bayes",
      folds: 3,
      rank: 3,
      samples: 12,
      burnIn: 3,
      seed: FM_DEFAULTS.fm_seed,
    });
    expect(Buffer.from(read.values.buffer).equals(Buffer.from(oof.values.buffer))).toBe(true);
    expect(Array.from(read.trainMask)).toEqual(Array.from(splitMask(ratings.userIds, ratings.movieIds, split.seed, split.splitProp)));
    const tables = read.tables as StackedTables;
    const written = new Map(Object.entries(tables));
    for (const [name, value] of Object.entries(oof.tables)) {
      const back: unknown = written.get(name);
      if (ArrayBuffer.isView(value) && ArrayBuffer.isView(back))
        expect(Buffer.from(back.buffer).equals(Buffer.from(value.buffer)), name).toBe(true);
      else expect(back, name).toBe(value);
    }
    const test = Array.from(read.trainMask.entries())
      .filter(([, m]) => m === 0)
      .map(([i]) => i);
    expect(Array.from(read.testPredictions)).toEqual(test.map((i) => oof.values[i * oof.width]));
    expect(read.details).toMatchObject({
      model: "bayes",
      width: 6,
      rows: fx.rows,
      testRows: test.length,
      split,
      factors: { digest: factors.manifest.digest },
    });
    expect(read.details.fits.map((f) => [f.fit, f.samples])).toEqual([
      [0, 12],
      [1, 12],
      [2, 12],
      [3, 12],
    ]);
    // The test RMSE is the full fit's, over the test rows whose user and movie it knows.
    const known = new Set(test.filter((i) => tables.userIds.includes(ratings.userIds[i]) && tables.itemIds.includes(ratings.movieIds[i])));
    let sse = 0;
    test.forEach((i, k) => {
      if (known.has(i)) sse += (read.testPredictions[k] - ratings.ratings[i]) ** 2;
    });
    expect(manifest.metrics.test_rmse).toBeCloseTo(Math.sqrt(sse / known.size), 6);
    expect(manifest.metrics).toMatchObject({ test_nrows: known.size, test_cold_rows: test.length - known.size, fits: 4, samples_full: 12 });
    expect(manifest.metrics.oof_rmse).toBeGreaterThan(0);
    // Logged as each fit ends (the full fit beside the later folds), one point per fit.
    expect(
      metrics.values
        .filter((m) => m.key === "samples_used")
        .map((m) => m.step)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    // A seed repeats exactly: the same digest.
    expect((await run("bayes-again", { fm_model: "bayes" })).manifest.digest).toBe(manifest.digest);
  });

  it("the als model takes the als step's factors as the full fit; none publishes no features", async () => {
    const als = await run("fm-als", { fm_model: "als" });
    const a = await readFmArtifact(out("fm-als"));
    expect(a.details.model).toBe("als");
    expect(als.metrics.fits).toBe(4);
    expect(a.details.columns[0]).toBe("als_prediction");
    expect(a.details.fits.map((f) => f.samples)).toEqual([0, 0, 0, 0]);
    const none = await run("none", { fm_model: "none" });
    const n = await readFmArtifact(out("none"));
    expect(n.details).toMatchObject({ model: "none", width: 0, fits: [] });
    expect(n.tables).toBeUndefined();
    expect(none.metrics.test_rmse).toBeNull();
    expect(Array.from(n.trainMask)).toEqual(Array.from(a.trainMask));
  });

  it("refuses the time group on ratings without timestamps, naming fm_time, and publishes nothing", async () => {
    const params = resolveFmParams({ ...SMALL, fm_time: "true" });
    const error = await fm({ ratings: fx.untimedRatingsDir, factors: fx.factorsDir }, params, out("time")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadParameterError);
    expect((error as BadParameterError).parameter).toBe("fm_time");
    expect(existsSync(out("time"))).toBe(false);
  });

  it("fits the time group from the timestamps etl keeps by default, and its tables travel in the artifact", async () => {
    await run("timed", { fm_time: "true", fm_implicit_movie: "true" });
    const read = await readFmArtifact(out("timed"));
    const time = (read.tables as StackedTables).time;
    expect(time?.bins).toBeGreaterThan(0);
    expect(time?.global.length).toBe(time?.bins);
    expect(read.details.tables).toBeDefined();
  });

  it("gives the same features whether the bayes fold fits run one after another or side by side in worker threads", async () => {
    await run("one-thread", { fm_num_threads: 1 });
    await run("two-threads", { fm_num_threads: 2 });
    const a = await readFmArtifact(out("one-thread"));
    const b = await readFmArtifact(out("two-threads"));
    expect(Array.from(b.values)).toEqual(Array.from(a.values));
    expect(b.details.fits.map((f) => f.samples)).toEqual(a.details.fits.map((f) => f.samples));
  });

  it("is declared between als and keras: ratings and factors in, one fm artifact out", () => {
    expect(fmStep.inputs).toEqual({ ratings: "ratings", factors: "factors" });
    expect(fmStep.outputs).toEqual({ features: "fm" });
    expect(fmStep.params.map((p) => p.name)).toEqual(
      expect.arrayContaining(["fm_model", "fm_max_samples", "fm_implicit_user", "fm_output"]),
    );
    expect(fmStep.params.find((p) => p.name === "fm_num_threads")?.inKey).toBe(false);
  });
});

describe("the fm artifact", () => {
  async function copyOf(name: string): Promise<string> {
    const dir = out(`copy-${name}`);
    await fs.cp(out("bayes"), dir, { recursive: true });
    return dir;
  }

  it("carries fields added to StackedTables through unchanged (typed arrays as files, scalars in the manifest)", async () => {
    const source = await readFmArtifact(out("bayes"));
    const tables = source.tables as StackedTables;
    const time = {
      start: 1_000_000,
      binSeconds: 86_400,
      bins: 30,
      global: new Float32Array(30).fill(0.1),
      itemBin: new Float32Array(tables.itemIds.length * 30).fill(0.25),
      dayUser: Int32Array.of(0, 1),
      day: Int32Array.of(3, 4),
      dayBias: Float32Array.of(0.5, -0.5),
    };
    const extended = {
      ...tables,
      timeBins: 30,
      ordinal: undefined,
      movieTimeBias: new Float32Array(tables.itemIds.length * 30).fill(0.5),
      time,
    };
    const { tables: _, ...details } = source.details;
    await writeFmArtifact(out("extended"), {
      details,
      values: source.values,
      trainMask: source.trainMask,
      testPredictions: source.testPredictions,
      tables: extended,
      params: {},
      metrics: {},
      producedBy: { step: "fm", version: "test" },
    });
    const back = new Map(Object.entries((await readFmArtifact(out("extended"))).tables ?? {}));
    expect(back.get("timeBins")).toBe(30);
    expect(back.has("ordinal")).toBe(false);
    expect(back.get("movieTimeBias")).toEqual(extended.movieTimeBias);
    // A nested group (the sampler's `time`) comes back as the object it was.
    expect(back.get("time")).toEqual(time);
  });

  it.each([
    [
      "a table file cut short",
      "tables/userFactors.bin",
      (b: Buffer) => b.subarray(0, b.length - 4),
      CorruptArtifactError,
      /userFactors\.bin: \d+ bytes/,
    ],
    [
      "a NaN in the features",
      "features.bin",
      (b: Buffer) => Buffer.concat([Buffer.from(new Float32Array([Number.NaN]).buffer), b.subarray(4)]),
      CorruptArtifactError,
      /features\.bin: features\[0\] is NaN/,
    ],
    [
      "a train mask byte that is not 0 or 1",
      "train_mask.bin",
      (b: Buffer) => Buffer.concat([Buffer.from([7]), b.subarray(1)]),
      CorruptArtifactError,
      /train_mask\.bin: byte 0 is 7/,
    ],
  ] as const)("refuses %s, naming the file", async (_what, file, edit, kind, message) => {
    const dir = await copyOf(file.replace(/\W/g, ""));
    const full = path.join(dir, file);
    await fs.writeFile(full, edit(await fs.readFile(full)));
    const error = await readFmArtifact(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind);
    expect(String(error)).toContain(full);
    expect(String(error)).toMatch(message);
  });

  it("refuses a manifest whose details lie about the tables, and a missing file", async () => {
    const dir = await copyOf("details");
    const manifestFile = path.join(dir, "manifest.json");
    const manifest = JSON.parse(await fs.readFile(manifestFile, "utf8"));
    manifest.details.tables.scalars.rank = "ten";
    await fs.writeFile(manifestFile, JSON.stringify(manifest));
    await expect(readFmArtifact(dir)).rejects.toThrow(CorruptArtifactError);
    await expect(readFmArtifact(dir)).rejects.toThrow(/tables: rank/);
    const gone = await copyOf("gone");
    await fs.rm(path.join(gone, "test_predictions.bin"));
    await expect(readFmArtifact(gone)).rejects.toThrow(MissingArtifactError);
  });

  it("publishes nothing non-finite", async () => {
    const source = await readFmArtifact(out("bayes"));
    const values = source.values.slice();
    values[5] = Number.POSITIVE_INFINITY;
    const { tables: _, ...details } = source.details;
    const writing = writeFmArtifact(out("infinite"), {
      details,
      values,
      trainMask: source.trainMask,
      testPredictions: source.testPredictions,
      params: {},
      metrics: {},
      producedBy: { step: "fm", version: "test" },
    });
    await expect(writing).rejects.toThrow(/features\[5\] is Infinity/);
    expect(existsSync(out("infinite"))).toBe(false);
  });
});

describe("fm parameters", () => {
  it("default to a 300-sweep cap (the data chooses the count below it) and the feature groups to auto (the data chooses them too)", () => {
    expect(resolveFmParams()).toMatchObject({
      fm_model: "auto",
      fm_folds: 3,
      fm_rank: 10,
      fm_max_samples: 300,
      fm_burn_in: 20,
      fm_implicit_user: "auto",
      fm_implicit_movie: "auto",
      fm_time: "auto",
      fm_output: "regression",
    });
  });

  it.each([
    [{ fm_folds: 1 }, "fm_folds"],
    [{ fm_rank: 0 }, "fm_rank"],
    [{ fm_max_samples: 0 }, "fm_max_samples"],
    [{ fm_max_samples: 5, fm_burn_in: 5 }, "fm_burn_in"],
    [{ fm_model: "svd" }, "fm_model"],
    [{ fm_output: "probit" }, "fm_output"],
    // The als step's Spark parameters, with its checks: no credentials in a recorded master URL.
    [{ als_engine: "spark", spark_master: "spark://user:pw@host:7077" }, "spark_master"],
    [{ als_engine: "yarn" }, "als_engine"],
  ] as [Record<string, unknown>, string][])("rejects %o naming %s", (bad, name) => {
    const error = (() => {
      try {
        resolveFmParams(bad as Partial<FmParams>);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BadParameterError);
    expect((error as BadParameterError).parameter).toBe(name);
  });
});

describe("fit progress", () => {
  it("counts fit i/N with N = folds + 1, and estimates the time left from the fits measured so far", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger({ level: "info", name: "test", destination: sink, pretty: false });
    const onFit = fitProgress(3, logger, undefined);
    onFit(0, 10, 40);
    onFit(1, 20, 40);
    onFit(2, 15, 40);
    onFit(3, 22, 40);
    logger.flush();
    expect(lines.map((l) => [l.fit, l.of])).toEqual([
      [0, 4],
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);
    // After fold 1 (10 s): 2 folds left + the full fit at 3/2 of a fold fit = 3.5 x 10 s.
    expect(lines[1].etaSeconds).toBe(35);
    // After fold 2 (mean 15 s): 1 fold + 1.5 = 2.5 x 15 s.
    expect(lines[2].etaSeconds).toBe(38);
    expect(lines[4].etaSeconds).toBe(0);
    expect(lines[4].msg).toBe("fm: fit 4/4 (the whole training part)");
  });
});
