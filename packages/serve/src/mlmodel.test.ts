/**
 * `writeMlflowModel` on factors written by @ms/als (the ALS kind; the keras kind is checked end to
 * end with MLflow by @ms/driver's mlmodel.slow.test.ts): the README's layout, an MLmodel MLflow
 * reads (YAML: flavors, signature, quoted time), the factors as raw arrays equal to the Parquet
 * ones, the entry copied with only its manifest's files, the cold-start rule's tables,
 * `readMlflowModel` giving back what `openModel` takes and a rule predicting the same bits; nothing left behind on failure; a directory without the ms flavor refused.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { readFactors } from "@ms/als";
import { ColdStartRule, CorruptArtifactError, MissingArtifactError, splitMaskOf } from "@ms/contracts";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MLMODEL, PYFUNC_PINS, readMlflowModel, writeMlflowModel } from "./mlmodel.js";
import { openModel } from "./serve.js";
import { fixture, RATINGS, type Fixture } from "./__tests__/fixture.js";

let fx: Fixture;
let rule: ColdStartRule;
beforeAll(async () => {
  fx = await fixture();
  // Some training rows, some not: the rule is fitted on the kept ones.
  rule = new ColdStartRule(RATINGS, splitMaskOf({ seed: 1, splitProp: 0.8 }, RATINGS));
});
afterAll(async () => fx.dispose());

const input = () => ({
  kind: "als" as const,
  dirs: { factors: fx.factorsDir },
  coldStart: rule,
  runId: "r1",
  artifactPath: "model",
  producedBy: "als@0.1.0",
});

describe("writeMlflowModel", () => {
  it("writes the README's layout with an MLmodel MLflow reads", async () => {
    const out = path.join(fx.root, "model-a");
    const written = await writeMlflowModel(input(), out);
    const factors = await readFactors(fx.factorsDir);
    const manifest = JSON.parse(await fs.readFile(path.join(fx.factorsDir, "manifest.json"), "utf8")) as { files: { path: string }[] };
    expect(written.files).toEqual(
      [
        "MLmodel",
        "code/ms_pyfunc.py",
        "conda.yaml",
        "data/ms-model.json",
        "data/factors/manifest.json",
        ...manifest.files.map((f) => `data/factors/${f.path}`),
        ...["itemFactors", "itemIds", "userFactors", "userIds"].map((n) => `data/pyfunc/${n}.bin`),
        ...["movieBias", "movieIds", "userBias", "userIds"].map((n) => `data/cold-start/${n}.bin`),
        "input_example.json",
        "python_env.yaml",
        "requirements.txt",
        "serving_input_example.json",
      ].sort(),
    );
    const text = await fs.readFile(path.join(out, MLMODEL.file), "utf8");
    const doc = YAML.parse(text) as {
      flavors: Record<string, Record<string, unknown>>;
      signature: { inputs: string };
      [key: string]: unknown;
    };
    expect(doc.flavors.python_function).toMatchObject({ loader_module: "ms_pyfunc", code: "code", data: "data" });
    expect(doc.flavors.ms).toMatchObject({ kind: "als", format: 1, data: "data", factors_digest: factors.manifest.digest });
    expect(JSON.parse(doc.signature.inputs)).toEqual([
      { type: "long", name: "userId", required: true },
      { type: "long", name: "movieId", required: true },
      { type: "long", name: "timestamp", required: false },
    ]);
    expect(doc.signature.inputs).toContain('{"type": "long", "name": "userId", "required": true}');
    expect(doc).toMatchObject({ run_id: "r1", artifact_path: "model", model_uuid: written.modelUuid, mlflow_version: PYFUNC_PINS.mlflow });
    // PyYAML reads an unquoted "2026-12-07 08:00:00.000000" as a datetime; MLflow wants the string.
    expect(text).toMatch(/^utc_time_created: '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}'$/m);
    expect(await fs.readFile(path.join(out, MLMODEL.requirements), "utf8")).toBe(
      `mlflow==${PYFUNC_PINS.mlflow}\nnumpy==${PYFUNC_PINS.numpy}\npandas==${PYFUNC_PINS.pandas}\n`,
    );
    const ids = await fs.readFile(path.join(out, "data/pyfunc/userIds.bin"));
    expect(Array.from(new Int32Array(new Uint8Array(ids).buffer))).toEqual(Array.from(factors.userIds));
    const vectors = await fs.readFile(path.join(out, "data/pyfunc/itemFactors.bin"));
    expect(Array.from(new Float32Array(new Uint8Array(vectors).buffer))).toEqual(Array.from(factors.itemFactors));
    const example = JSON.parse(await fs.readFile(path.join(out, MLMODEL.servingExample), "utf8")) as {
      dataframe_split: { data: number[][] };
    };
    for (const [u, m] of example.dataframe_split.data)
      expect([factors.userIds.includes(u), factors.itemIds.includes(m)]).toEqual([true, true]);
  });

  it("is read back by readMlflowModel into what openModel takes", async () => {
    const out = path.join(fx.root, "model-b");
    await writeMlflowModel(input(), out);
    const { kind, dirs, coldStart } = await readMlflowModel(out);
    expect(kind).toBe("als");
    for (const u of [1, 3, 5, 8, 99]) for (const m of [10, 20, 30, 40, 99]) expect(coldStart.predict(u, m)).toBe(rule.predict(u, m));
    const movieBias = await fs.readFile(path.join(out, "data/cold-start/movieBias.bin"));
    expect(new Float64Array(new Uint8Array(movieBias).buffer)).toEqual(rule.tables().movieBias);
    const model = await openModel(kind, dirs);
    const original = await openModel("als", { factors: fx.factorsDir });
    const users = Int32Array.from([3, 5, 8]);
    const movies = Int32Array.from([10, 20, 30]);
    expect(Array.from(await model.predict(users, movies))).toEqual(Array.from(await original.predict(users, movies)));
  });

  it("leaves nothing behind when it fails, and refuses a directory without the ms flavor", async () => {
    const out = path.join(fx.root, "model-c");
    await expect(writeMlflowModel({ ...input(), kind: "keras" }, out)).rejects.toBeInstanceOf(MissingArtifactError);
    await expect(fs.stat(out)).rejects.toThrow();
    expect((await fs.readdir(fx.root)).filter((n) => n.includes("model-c"))).toEqual([]);
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, MLMODEL.file), "flavors:\n  python_function: {}\n");
    await expect(readMlflowModel(out)).rejects.toBeInstanceOf(CorruptArtifactError);
    await expect(readMlflowModel(path.join(fx.root, "nowhere"))).rejects.toBeInstanceOf(MissingArtifactError);
  });
});
