/**
 * The keras step end to end on small generated data: real etl and als artifacts in, a tfjs
 * layers model out; reloading it must re-score to the same MSE; bad inputs fail cleanly.
 */
import {
  BadInputError,
  BadParameterError,
  CorruptArtifactError,
  InterruptedError,
  Fields,
  MemoryMetrics,
  MissingArtifactError,
  readManifest,
} from "@ms/contracts";
import { FACTORS_FILES, FactorsDetailsSchema, writeFactorsArtifact } from "@ms/als";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";
import type { KerasParams } from "./params.js";
import {
  evaluateModel,
  FeatureAssembler,
  joinRatings,
  keras,
  loadModel,
  predict,
  predictionTable,
  predictTable,
  resolveKerasParams,
  trainNetwork,
  KERAS_DEFAULTS,
} from "./index.js";

let root: string;
let fx: FixtureDirs;

beforeAll(async () => {
  root = await tempDir();
  fx = await writeFixture(root, { users: 90, movies: 50, usersWithoutFactors: 5, seed: 3 });
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

// The seed's feature set: these tests are about the step's plumbing, not the out-of-fold fits (stacked.test.ts).
const QUICK = {
  keras_epochs: 4,
  keras_batch_size: 32,
  keras_learning_rate: 0.01,
  keras_output_bias: "mean",
  keras_backend: "wasm",
  keras_features: "factors",
} as const;

describe("keras step", () => {
  it("trains, publishes a tfjs layers model with its manifest, and reloads to the same test MSE", async () => {
    const out = path.join(root, "model-a");
    const sink = new MemoryMetrics();
    const result = await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveKerasParams(QUICK), out, { metrics: sink });
    const m = result.metrics;

    expect(result.modelFile).toBe(path.join(out, "model.json"));
    expect((await fs.readdir(out)).sort()).toEqual(["manifest.json", "model.json", "weights.bin"]);
    const manifest = await readManifest(out, "keras-model");
    expect(manifest.details).toMatchObject({
      backend: "wasm",
      rank: 4,
      inputWidth: 8,
      features: "factors",
      split: { seed: 7, splitProp: 0.8 },
    });
    expect(manifest.params).toMatchObject({ keras_hidden_units: 20, keras_epochs: 4, keras_batch_size: 32 });
    expect(manifest.files.map((f) => f.path).sort()).toEqual(["model.json", "weights.bin"]);

    // Ratings of users without factors are dropped and counted; the rest is split by the shared hash.
    const expected = joinRatings(fx.data.ratings, fx.data.factors, { seed: 7, splitProp: 0.8 });
    const droppedByData = fx.data.ratings.userIds.filter((u) => u > 85).length;
    expect(droppedByData).toBeGreaterThan(0);
    expect(m.dropped_no_factors).toBe(droppedByData);
    expect(m.training_nrows).toBe(expected.trainRows.length);
    expect(m.test_nrows).toBe(expected.testRows.length);
    expect(m.training_nrows + m.test_nrows + m.dropped_no_factors).toBe(fx.data.ratings.rows);
    expect(m.validation_nrows).toBe(m.training_nrows - Math.trunc(m.training_nrows * 0.8));
    expect(m.test_rmse).toBeCloseTo(Math.sqrt(m.test_mse), 12);

    // The network learned: well below the variance of the test ratings (predicting their mean).
    const test = Array.from(expected.testRows, (r) => expected.ratings[r]);
    const mean = test.reduce((a, b) => a + b, 0) / test.length;
    const variance = test.reduce((a, b) => a + (b - mean) ** 2, 0) / test.length;
    expect(m.test_mse).toBeLessThan(0.6 * variance);

    // Per-epoch loss and val_loss with their epoch as step, then the final metrics.
    const losses = sink.values.filter((v) => v.key === "loss");
    expect(losses.map((v) => v.step)).toEqual(Array.from({ length: m.epochs_run }, (_, i) => i));
    expect(sink.values.filter((v) => v.key === "val_loss")).toHaveLength(m.epochs_run);
    expect(losses[losses.length - 1].value).toBeLessThan(losses[0].value);
    for (const key of ["training_nrows", "test_nrows", "train_mse", "test_mse", "test_rmse"]) {
      expect(sink.values.find((v) => v.key === key)?.value).toBe(m[key]);
    }

    const rescored = await evaluateModel(out, { ratings: fx.ratingsDir, factors: fx.factorsDir }, { backend: "wasm" });
    expect(rescored.test_nrows).toBe(m.test_nrows);
    expect(rescored.test_mse).toBeCloseTo(m.test_mse, 6);
    expect(rescored.train_mse).toBeCloseTo(m.train_mse, 6);

    // predict() on hand-built features (movie factors then user factors) agrees with the MSE.
    const loaded = await loadModel(out, { backend: "wasm" });
    const assembler = new FeatureAssembler("factors", fx.data.factors, expected);
    const x = new Float32Array(expected.testRows.length * assembler.width);
    const y = new Float32Array(expected.testRows.length);
    assembler.fill(expected.testRows, 0, expected.testRows.length, x, y);
    const p = await predict(loaded, x);
    const mse = p.reduce((a, v, i) => a + (v - y[i]) ** 2, 0) / p.length;
    expect(mse).toBeCloseTo(m.test_mse, 5);
    loaded.model.dispose();
  });

  it("is deterministic for a given seed", async () => {
    const a = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...QUICK, keras_epochs: 2 }),
      path.join(root, "det-a"),
    );
    const b = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...QUICK, keras_epochs: 2 }),
      path.join(root, "det-b"),
    );
    expect(b.metrics.test_mse).toBe(a.metrics.test_mse);
    expect(b.manifest.digest).toBe(a.manifest.digest);
  });

  it("adds the ALS prediction as an input with --features factors+dot", async () => {
    const r = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...QUICK, keras_features: "factors+dot" }),
      path.join(root, "dot"),
    );
    expect(r.manifest.details.inputWidth).toBe(9);
    const rescored = await evaluateModel(path.join(root, "dot"), { ratings: fx.ratingsDir, factors: fx.factorsDir }, { backend: "wasm" });
    expect(rescored.test_mse).toBeCloseTo(r.metrics.test_mse, 6);
  });

  it("trains on the cpu backend too", async () => {
    const r = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...QUICK, keras_epochs: 1, keras_backend: "cpu" }),
      path.join(root, "cpu"),
    );
    expect(r.manifest.details.backend).toBe("cpu");
    expect(Number.isFinite(r.metrics.test_mse)).toBe(true);
  });
});

describe("parameters", () => {
  it("keeps the seed's values with the seed's features", () => {
    for (const features of ["seed", "factors"] as const) {
      expect(resolveKerasParams({ keras_features: features })).toMatchObject({
        keras_hidden_units: 20,
        keras_epochs: 3,
        keras_batch_size: 128,
        keras_learning_rate: 1e-4,
        keras_patience: 2,
        keras_min_delta: 1e-4,
        keras_validation_split: 0.2,
        keras_output_bias: "zero",
        keras_features: features,
      });
    }
  });

  it("defaults to the stacked features with their own training defaults, each overridable", () => {
    expect(resolveKerasParams()).toMatchObject({
      keras_hidden_units: 20,
      keras_epochs: 6,
      keras_batch_size: 128,
      keras_learning_rate: 1e-3,
      keras_output_bias: "mean",
      keras_init: "identity",
      keras_features: "stacked",
    });
    expect(KERAS_DEFAULTS.keras_features).toBe("stacked");
    expect(resolveKerasParams({ keras_learning_rate: 5e-4, keras_output_bias: "zero" })).toMatchObject({
      keras_learning_rate: 5e-4,
      keras_output_bias: "zero",
      keras_epochs: 6,
    });
    expect(resolveKerasParams({ keras_features: "seed", keras_epochs: 9 })).toMatchObject({ keras_learning_rate: 1e-4, keras_epochs: 9 });
  });

  it.each([
    [{ keras_hidden_units: 0 }, "keras_hidden_units"],
    [{ keras_batch_size: 0 }, "keras_batch_size"],
    [{ keras_epochs: 0 }, "keras_epochs"],
    [{ keras_learning_rate: 0 }, "keras_learning_rate"],
    [{ keras_learning_rate: -1e-3 }, "keras_learning_rate"],
    [{ keras_hidden_units: 2.5 }, "keras_hidden_units"],
    [{ keras_hidden_units: 1e9 }, "keras_hidden_units"],
    [{ keras_hidden_units: 4097 }, "keras_hidden_units"],
    [{ keras_batch_size: 65_537 }, "keras_batch_size"],
    [{ keras_epochs: 10_001 }, "keras_epochs"],
    [{ keras_allow_foreign_factors: "yes" }, "keras_allow_foreign_factors"],
    [{ keras_features: "nope" }, "keras_features"],
    [{ keras_backend: "gpu" }, "keras_backend"],
  ] as [Record<string, unknown>, string][])("rejects %o naming %s", (bad, name) => {
    let error: unknown;
    try {
      resolveKerasParams(bad as Partial<KerasParams>);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BadParameterError);
    expect((error as BadParameterError).parameter).toBe(name);
  });
});

describe("bad factor files", () => {
  async function copyOf(name: string): Promise<string> {
    const dir = path.join(root, name);
    await fs.cp(fx.factorsDir, dir, { recursive: true });
    return dir;
  }

  async function expectFailure(factors: string, cls: new (...args: never[]) => Error, pattern: RegExp): Promise<void> {
    const out = path.join(root, `out-${path.basename(factors)}`);
    const error = await keras({ ratings: fx.ratingsDir, factors }, resolveKerasParams(QUICK), out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(cls);
    expect((error as Error).message).toMatch(pattern);
    expect(existsSync(out)).toBe(false);
    expect((await fs.readdir(root)).filter((f) => f.startsWith(`.out-${path.basename(factors)}`))).toEqual([]);
  }

  it("rejects a missing factor file", async () => {
    const dir = await copyOf("no-users");
    await fs.rm(path.join(dir, FACTORS_FILES.users));
    await expectFailure(dir, MissingArtifactError, /user_factors\.parquet/);
  });

  it("rejects user and movie factors of different ranks: as damaged, and as inconsistent where the caller vouches for the files", async () => {
    const other = path.join(root, "rank3");
    const f = fx.data.factors;
    const rank3 = (a: Float32Array, n: number) => Float32Array.from({ length: n * 3 }, (_, i) => a[Math.floor(i / 3) * 4 + (i % 3)]);
    await writeFactorsArtifact(other, {
      tables: {
        rank: 3,
        userIds: f.userIds,
        userFactors: rank3(f.userFactors, f.userIds.length),
        itemIds: f.itemIds,
        itemFactors: rank3(f.itemFactors, f.itemIds.length),
      },
      details: {
        rank: 3,
        users: f.userIds.length,
        items: f.itemIds.length,
        seed: 7,
        splitProp: 0.8,
        coldStartStrategy: "drop",
        ratings: { digest: "sha256:00", rows: 1 },
      },
      params: {},
      metrics: {},
    });
    const dir = await copyOf("mixed-rank");
    await fs.copyFile(path.join(other, FACTORS_FILES.items), path.join(dir, FACTORS_FILES.items));
    await expectFailure(dir, CorruptArtifactError, /damaged factors artifact: .*item_factors\.parquet/);
    const error = await keras({ ratings: fx.ratingsDir, factors: dir }, resolveKerasParams(QUICK), path.join(root, "out-vouched"), {
      inputsVerified: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toMatch(/item_factors\.parquet.*rank 3/);
  });

  it("rejects a factor file with the wrong schema", async () => {
    const dir = await copyOf("wrong-schema");
    await fs.copyFile(path.join(fx.ratingsDir, "ratings.parquet"), path.join(dir, FACTORS_FILES.items));
    const out = path.join(root, "out-wrong-schema");
    const error = await keras({ ratings: fx.ratingsDir, factors: dir }, resolveKerasParams(QUICK), out).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/item_factors\.parquet/);
    expect(existsSync(out)).toBe(false);
  });

  it("rejects a directory that is not a factors artifact", async () => {
    await expectFailure(fx.ratingsDir, CorruptArtifactError, /"ratings" artifact, expected "factors"/);
  });

  it("refuses to overwrite a directory that is not a keras model", async () => {
    const out = path.join(root, "user-files");
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, "precious.txt"), "keep me");
    await expect(keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveKerasParams(QUICK), out)).rejects.toBeInstanceOf(
      BadParameterError,
    );
    expect(await fs.readFile(path.join(out, "precious.txt"), "utf8")).toBe("keep me");
  });
});

describe("no NaN or infinite output", () => {
  it("a learning rate that blows the training up is refused naming keras_learning_rate; nothing is published", async () => {
    const out = path.join(root, "lr-blowup");
    const error = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...QUICK, keras_learning_rate: 1e300 }),
      out,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadParameterError);
    expect((error as BadParameterError).parameter).toBe("keras_learning_rate");
    expect((error as Error).message).toMatch(/training diverged/);
    expect(existsSync(out)).toBe(false);
    expect((await fs.readdir(root)).filter((f) => f.startsWith(".lr-blowup"))).toEqual([]);
  });

  it("a factor file holding a NaN row is bad input naming the file and the id (exit 3)", async () => {
    const f = fx.data.factors;
    const userFactors = f.userFactors.slice();
    userFactors.fill(Number.NaN, 4 * f.rank, 5 * f.rank);
    const dir = path.join(root, "nan-factors");
    const manifest = await readManifest(fx.factorsDir, "factors", { params: Fields, metrics: Fields, details: FactorsDetailsSchema });
    await writeFactorsArtifact(dir, {
      tables: { ...f, userFactors },
      details: {
        rank: f.rank,
        users: f.userIds.length,
        items: f.itemIds.length,
        seed: 7,
        splitProp: 0.8,
        coldStartStrategy: "drop",
        ratings: manifest.details.ratings,
      },
      params: {},
      metrics: {},
    });
    const out = path.join(root, "out-nan-factors");
    const error = await keras({ ratings: fx.ratingsDir, factors: dir }, resolveKerasParams(QUICK), out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toContain(`${path.join(dir, FACTORS_FILES.users)}: id ${f.userIds[4]}: features[0] is NaN`);
    expect(existsSync(out)).toBe(false);
  });

  it("trainNetwork refuses in-memory factors with a NaN, naming the id", async () => {
    const f = fx.data.factors;
    const itemFactors = f.itemFactors.slice();
    itemFactors[2 * f.rank + 1] = Number.POSITIVE_INFINITY;
    await expect(
      trainNetwork(fx.data.ratings, { ...f, itemFactors }, { seed: 7, splitProp: 0.8 }, resolveKerasParams(QUICK)),
    ).rejects.toThrow(`movie factors of movieId ${f.itemIds[2]}: feature 1 is Infinity`);
  });
});

describe("factors fitted on other ratings", () => {
  it("are refused as corrupt naming both digests, unless keras_allow_foreign_factors", async () => {
    const otherRoot = await tempDir();
    try {
      const other = await writeFixture(otherRoot, { users: 90, movies: 50, seed: 11 });
      const out = path.join(root, "foreign");
      const error = await keras({ ratings: other.ratingsDir, factors: fx.factorsDir }, resolveKerasParams(QUICK), out).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CorruptArtifactError);
      const fitted = (await readManifest(fx.factorsDir, "factors", { params: Fields, metrics: Fields, details: FactorsDetailsSchema }))
        .details.ratings.digest;
      const given = (await readManifest(other.ratingsDir)).digest;
      expect(fitted).not.toBe(given);
      expect((error as Error).message).toContain(fitted);
      expect((error as Error).message).toContain(given);
      expect((error as Error).message).toContain("--keras-allow-foreign-factors");
      expect(existsSync(out)).toBe(false);
      const forced = await keras(
        { ratings: other.ratingsDir, factors: fx.factorsDir },
        resolveKerasParams({ ...QUICK, keras_allow_foreign_factors: true }),
        out,
      );
      expect(Number.isFinite(forced.metrics.test_mse)).toBe(true);
      expect(forced.manifest.details.ratings.digest).toBe(given);
    } finally {
      await fs.rm(otherRoot, { recursive: true, force: true });
    }
  });

  it("match when the ratings are given as the etl output's bare Parquet file", async () => {
    const out = path.join(root, "bare-file");
    const r = await keras({ ratings: path.join(fx.ratingsDir, "ratings.parquet"), factors: fx.factorsDir }, resolveKerasParams(QUICK), out);
    expect(r.metrics.test_nrows).toBeGreaterThan(0);
  });
});

describe("signals and Arrow", () => {
  it("an abort between batches ends with InterruptedError (exit 130) and publishes nothing", async () => {
    const controller = new AbortController();
    const out = path.join(root, "aborted");
    const metrics = { metric: (key: string) => key === "loss" && controller.abort() };
    const error = await keras(
      { ratings: fx.ratingsDir, factors: fx.factorsDir },
      resolveKerasParams({ ...QUICK, keras_epochs: 50, keras_patience: 50 }),
      out,
      { metrics, signal: controller.signal },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(existsSync(out)).toBe(false);
  });

  it("predictTable wraps the predictions' own buffer", async () => {
    const out = path.join(root, "arrow-model");
    await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveKerasParams(QUICK), out);
    const loaded = await loadModel(out, { backend: "wasm" });
    try {
      const features = Float32Array.from({ length: 3 * loaded.inputWidth }, (_, i) => Math.sin(i));
      const table = await predictTable(loaded, features);
      expect(table.numRows).toBe(3);
      expect(String(table.schema.fields[0].type)).toBe("Float32");
      const values = table.getChild("prediction")!.data[0].values;
      expect(values).toBeInstanceOf(Float32Array);
      const predictions = await predict(loaded, features);
      expect(Array.from(values)).toEqual(Array.from(predictions));
      // Zero-copy: the column's data is the very Float32Array handed in.
      expect((await predictionTable(predictions)).getChild("prediction")!.data[0].values).toBe(predictions);
    } finally {
      loaded.model.dispose();
    }
  });
});

describe("damaged model files", () => {
  it("a model.json or manifest cut short, or with an edited field, is corrupt, naming the file and the field", async () => {
    const out = path.join(root, "model-damaged");
    await keras({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveKerasParams({ ...QUICK, keras_epochs: 1 }), out);
    const modelFile = path.join(out, "model.json");
    const manifestFile = path.join(out, "manifest.json");
    const model = await fs.readFile(modelFile, "utf8");
    const manifest = await fs.readFile(manifestFile, "utf8");
    const rejects = async (message: RegExp) => {
      const error = await loadModel(out, { backend: "wasm" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptArtifactError);
      expect((error as Error).message).toMatch(message);
    };

    await fs.writeFile(modelFile, model.slice(0, model.length / 2));
    await rejects(/model\.json: not valid JSON/);
    const edited = JSON.parse(model) as { weightsManifest: { weights: { dtype: string }[] }[] };
    edited.weightsManifest[0].weights[0].dtype = "float64";
    await fs.writeFile(modelFile, JSON.stringify(edited));
    await rejects(/model\.json: weightsManifest\[0\]\.weights\[0\]\.dtype: /);
    await fs.writeFile(modelFile, model);

    await fs.writeFile(manifestFile, manifest.slice(0, manifest.length - 10));
    await rejects(/manifest\.json: not valid JSON/);
    await fs.writeFile(
      manifestFile,
      JSON.stringify({ ...JSON.parse(manifest), details: { ...JSON.parse(manifest).details, inputWidth: 0 } }),
    );
    await rejects(/manifest\.json: details: inputWidth: /);
    await fs.writeFile(manifestFile, manifest);
    expect((await loadModel(out, { backend: "wasm" })).inputWidth).toBe(8);
  });
});
