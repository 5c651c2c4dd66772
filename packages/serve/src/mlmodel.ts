/**
 * A run's final model as an MLflow Model directory, the form MLflow's clients, `mlflow models
 * serve` and the model registry understand: an `MLmodel` file with a `python_function` flavor whose
 * loader (`python/ms_pyfunc.py`, shipped in `code/`) scores with numpy alone from the files ms
 * already writes, which sit in `data/` as ms wrote them (the `ms` flavor, for ms to load back);
 * a signature (`userId`, `movieId` long, optional `timestamp` long: seconds, the time a model with
 * time effects scores the pair at -> `prediction` double), an input example, and the
 * environment files with pinned numpy and pandas. The layout is README's "The MLflow Model
 * directory"; `readMlflowModel` reads the ms flavor back.
 *
 * The loader cannot read Parquet with numpy alone, so where it needs the factors (the ALS model,
 * the seed's feature sets) they are copied beside the factors entry as raw little-endian arrays
 * (`data/pyfunc/*.bin`), the way the stacked tables already are; the default stacked network
 * scores from its tables alone.
 *
 * The cold-start rule (@ms/contracts' `ColdStartRule`, fitted on the run's training part) travels
 * as its numbers, `data/cold-start/*.bin` (ids int32, biases float64) and the mean in
 * ms-model.json, so the pyfunc scores an unknown id as `ms predict` does.
 */
import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as v from "valibot";
import YAML from "yaml";
import {
  asStorageError,
  buildArtifactDir,
  ColdStartRule,
  CorruptArtifactError,
  MissingArtifactError,
  parseJsonFile,
  walkFiles,
} from "@ms/contracts";
import { readFactors, type Factors } from "@ms/als";
import type { ModelDirs, ModelKind } from "./serve.js";

/** The ms-model.json format this code writes and the loader reads. */
export const MS_MODEL_FORMAT = 1;

/**
 * The Python, MLflow, numpy and pandas the model's environment files pin: those of tools/mlflow's
 * venv (the one the tests load and serve the model with; MLflow lists itself the same way, since
 * its scoring server runs inside the model's environment). The slow test checks the venv has these.
 */
export const PYFUNC_PINS = { python: "3.11.7", mlflow: "3.17.2", numpy: "2.4.6", pandas: "3.1.1" } as const;

/** Names inside the model directory (README's layout). */
export const MLMODEL = {
  file: "MLmodel",
  code: "code",
  data: "data",
  loader: "ms_pyfunc",
  spec: "ms-model.json",
  inputExample: "input_example.json",
  servingExample: "serving_input_example.json",
  requirements: "requirements.txt",
  pythonEnv: "python_env.yaml",
  conda: "conda.yaml",
  /** data/ subdirectories: the keras-model entry, the factors entry, the numpy copies of the factors, the cold-start rule's tables. */
  kerasDir: "keras",
  factorsDir: "factors",
  arraysDir: "pyfunc",
  coldStartDir: "cold-start",
} as const;

/** The input and output columns of the signature, as MLflow's schema JSON. */
export const SIGNATURE = {
  inputs: [
    { type: "long", name: "userId", required: true },
    { type: "long", name: "movieId", required: true },
    { type: "long", name: "timestamp", required: false },
  ],
  outputs: [{ type: "double", name: "prediction", required: true }],
} as const;

const LOADER_FILE = fileURLToPath(new URL("../python/ms_pyfunc.py", import.meta.url));

export interface MlflowModelInput {
  kind: ModelKind;
  dirs: ModelDirs;
  /** The run that produced the model (MLmodel's `run_id`) and the artifact path it is logged at. */
  runId?: string;
  artifactPath?: string;
  /** MLflow 3's LoggedModel id, when one was created for it. */
  modelId?: string;
  /** The run's cold-start rule (`coldStartRuleOf`): it scores the pairs with an id the model has no factors for. */
  coldStart: ColdStartRule;
  /** The step and version that produced the model (`keras@0.1.0`), written into the ms flavor. */
  producedBy: string;
  /** Pairs for the input example (default: the first known users and movies). */
  example?: { userIds: readonly number[]; movieIds: readonly number[] };
}

export interface WrittenMlflowModel {
  dir: string;
  modelUuid: string;
  /** Every file, relative to `dir`, with '/' separators. */
  files: string[];
  sizeBytes: number;
}

/** One raw array of `data/pyfunc/`, as ms-model.json lists it. */
interface ArrayRecord {
  name: string;
  dtype: "int32" | "float32" | "float64";
  length: number;
  path: string;
}

/** Copies an artifact directory's manifest and the files it lists (not the cache's own bookkeeping beside them). */
async function copyArtifact(from: string, to: string): Promise<void> {
  const manifest = await parseJsonFile(path.join(from, "manifest.json"), ManifestFiles);
  for (const rel of ["manifest.json", ...manifest.files.map((f) => f.path)]) {
    await fs.mkdir(path.dirname(path.join(to, rel)), { recursive: true });
    await fs.copyFile(path.join(from, rel), path.join(to, rel));
  }
}

const ManifestFiles = v.object({ files: v.array(v.object({ path: v.string() })) });

/** Raw little-endian arrays into data/`sub`/<name>.bin (typed arrays are little-endian on every platform Node runs on). */
async function writeArrays(
  data: string,
  sub: string,
  arrays: Record<string, Int32Array | Float32Array | Float64Array>,
): Promise<ArrayRecord[]> {
  await fs.mkdir(path.join(data, sub), { recursive: true });
  const out: ArrayRecord[] = [];
  for (const [name, a] of Object.entries(arrays)) {
    const rel = `${sub}/${name}.bin`;
    await fs.writeFile(path.join(data, rel), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    const dtype = a instanceof Int32Array ? "int32" : a instanceof Float32Array ? "float32" : "float64";
    out.push({ name, dtype, length: a.length, path: rel });
  }
  return out;
}

/** A raw array ms-model.json lists, checked against its record. */
async function readArray(data: string, a: ArrayRecord): Promise<Int32Array | Float64Array | Float32Array> {
  const file = path.join(data, a.path);
  const bytes = new Uint8Array(await fs.readFile(file));
  const Type = a.dtype === "int32" ? Int32Array : a.dtype === "float32" ? Float32Array : Float64Array;
  if (bytes.byteLength !== a.length * Type.BYTES_PER_ELEMENT)
    throw new CorruptArtifactError(`${file}: ${bytes.byteLength} bytes, ms-model.json says ${a.length} ${a.dtype} values`);
  return new Type(bytes.buffer, bytes.byteOffset, a.length);
}

/** A few (user, movie) pairs the model knows, for the input example. */
function examplePairs(known: Pick<Sources, "userIds" | "movieIds">, given: MlflowModelInput["example"]): Array<[number, number]> {
  if (given) return given.userIds.map((u, i) => [u, given.movieIds[i]]);
  const n = Math.min(3, known.userIds.length, known.movieIds.length);
  return Array.from({ length: n }, (_, i) => [known.userIds[i], known.movieIds[i]]);
}

function environmentFiles(): Record<string, string> {
  const deps = [`mlflow==${PYFUNC_PINS.mlflow}`, `numpy==${PYFUNC_PINS.numpy}`, `pandas==${PYFUNC_PINS.pandas}`];
  return {
    [MLMODEL.requirements]: `${deps.join("\n")}\n`,
    [MLMODEL.pythonEnv]: YAML.stringify({
      python: PYFUNC_PINS.python,
      build_dependencies: ["pip", "setuptools", "wheel"],
      dependencies: [`-r ${MLMODEL.requirements}`],
    }),
    [MLMODEL.conda]: YAML.stringify({
      channels: ["conda-forge"],
      dependencies: [`python=${PYFUNC_PINS.python}`, "pip", { pip: deps }],
      name: "mlflow-env",
    }),
  };
}

/** MLflow's timestamp format for `utc_time_created` ("2026-12-07 08:00:00.000000"). */
function utcCreated(now: Date): string {
  return `${now.toISOString().replace("T", " ").replace("Z", "")}000`;
}

function mlmodelText(
  input: MlflowModelInput,
  spec: { features?: string; modelDigest: string; factorsDigest: string },
  uuid: string,
  sizeBytes: number,
): string {
  const doc: Record<string, unknown> = {
    ...(input.artifactPath ? { artifact_path: input.artifactPath } : {}),
    flavors: {
      python_function: {
        code: MLMODEL.code,
        data: MLMODEL.data,
        env: { conda: MLMODEL.conda, virtualenv: MLMODEL.pythonEnv },
        loader_module: MLMODEL.loader,
        python_version: PYFUNC_PINS.python,
        streamable: false,
      },
      ms: {
        data: MLMODEL.data,
        format: MS_MODEL_FORMAT,
        kind: input.kind,
        ...(spec.features ? { features: spec.features } : {}),
        model_digest: spec.modelDigest,
        factors_digest: spec.factorsDigest,
        produced_by: input.producedBy,
      },
    },
    is_signature_from_type_hint: false,
    mlflow_version: PYFUNC_PINS.mlflow,
    model_id: input.modelId ?? null,
    model_size_bytes: sizeBytes,
    model_uuid: uuid,
    prompts: null,
    ...(input.runId ? { run_id: input.runId } : {}),
    saved_input_example_info: {
      artifact_path: MLMODEL.inputExample,
      pandas_orient: "split",
      serving_input_path: MLMODEL.servingExample,
      type: "dataframe",
    },
    signature: { inputs: schemaJson(SIGNATURE.inputs), outputs: schemaJson(SIGNATURE.outputs), params: null },
    type_hint_from_example: false,
    // Quoted as MLflow writes it: PyYAML would read a plain one as a timestamp, not the string MLflow expects.
    utc_time_created: Object.assign(new YAML.Scalar(utcCreated(new Date())), { type: YAML.Scalar.QUOTE_SINGLE }),
  };
  return YAML.stringify(doc);
}

/** A schema as MLflow writes it into MLmodel: Python's json.dumps, ", " and ": " separators. */
function schemaJson(columns: ReadonlyArray<Record<string, unknown>>): string {
  return `[${columns
    .map(
      (c) =>
        `{${Object.entries(c)
          .map(([k, val]) => `${JSON.stringify(k)}: ${JSON.stringify(val)}`)
          .join(", ")}}`,
    )
    .join(", ")}]`;
}

/** Bytes of every file under `dir`. */
async function sizeOf(dir: string, files: readonly string[]): Promise<number> {
  let total = 0;
  for (const f of files) total += (await fs.stat(path.join(dir, f))).size;
  return total;
}

/** What the model directory is made from: the digests, the known ids, and the factors when the pyfunc needs them. */
interface Sources {
  factorsDigest: string;
  rank: number;
  modelDigest: string;
  features?: string;
  /** Read only for the ALS model and the seed's feature sets (reading Parquet loads DuckDB: a cached run avoids it). */
  factors?: Factors;
  userIds: Int32Array;
  movieIds: Int32Array;
}

const FactorsHead = v.object({ digest: v.string(), details: v.object({ rank: v.number() }) });
const KerasManifestHead = v.object({ digest: v.string(), details: v.object({ features: v.string() }) });

async function readInt32(file: string): Promise<Int32Array> {
  try {
    return new Int32Array(new Uint8Array(await fs.readFile(file)).buffer);
  } catch (error) {
    throw new MissingArtifactError(`${file}: missing (the stacked model's tables)`, { cause: error });
  }
}

async function sourcesOf(input: MlflowModelInput): Promise<Sources> {
  const fm = await parseJsonFile(path.join(input.dirs.factors, "manifest.json"), FactorsHead);
  const base = { factorsDigest: fm.digest, rank: fm.details.rank };
  if (input.kind === "keras") {
    if (!input.dirs.model) throw new MissingArtifactError("a keras MLflow model needs the keras-model directory");
    const km = await parseJsonFile(path.join(input.dirs.model, "manifest.json"), KerasManifestHead);
    const model = { ...base, modelDigest: km.digest, features: km.details.features };
    if (km.details.features === "stacked") {
      // The full fit's tables hold exactly the ids with training ratings, the ids the factors have.
      const [userIds, movieIds] = await Promise.all(
        ["userIds", "itemIds"].map((n) => readInt32(path.join(input.dirs.model as string, "tables", `${n}.bin`))),
      );
      return { ...model, userIds, movieIds };
    }
    const factors = await readFactors(input.dirs.factors);
    return { ...model, factors, userIds: factors.userIds, movieIds: factors.itemIds };
  }
  const factors = await readFactors(input.dirs.factors);
  return { ...base, modelDigest: fm.digest, factors, userIds: factors.userIds, movieIds: factors.itemIds };
}

/** data/: ms's entries as they are, the raw factors when needed, and ms-model.json saying which is which. */
async function writeData(data: string, input: MlflowModelInput, src: Sources): Promise<void> {
  await copyArtifact(input.dirs.factors, path.join(data, MLMODEL.factorsDir));
  if (input.kind === "keras") await copyArtifact(input.dirs.model as string, path.join(data, MLMODEL.kerasDir));
  const f = src.factors;
  const arrays = f
    ? await writeArrays(data, MLMODEL.arraysDir, {
        userIds: f.userIds,
        itemIds: f.itemIds,
        userFactors: f.userFactors,
        itemFactors: f.itemFactors,
      })
    : [];
  const { mean, ...cold } = input.coldStart.tables();
  const coldArrays = await writeArrays(data, MLMODEL.coldStartDir, cold);
  const spec: MsModelSpec = {
    format: MS_MODEL_FORMAT,
    kind: input.kind,
    ...(input.kind === "keras" ? { model: MLMODEL.kerasDir, modelDigest: src.modelDigest } : {}),
    ...(src.features ? { features: src.features } : {}),
    factors: { dir: MLMODEL.factorsDir, digest: src.factorsDigest, rank: src.rank, arrays },
    coldStart: { mean, arrays: coldArrays },
  };
  await fs.writeFile(path.join(data, MLMODEL.spec), `${JSON.stringify(spec, null, 2)}\n`);
}

/**
 * Writes the MLflow Model of a run's model into `outDir` (created; nothing is left there on
 * failure). The keras model needs `dirs.model`; both kinds need the factors.
 */
export async function writeMlflowModel(input: MlflowModelInput, outDir: string): Promise<WrittenMlflowModel> {
  const target = path.resolve(outDir);
  const src = await sourcesOf(input);
  const uuid = randomUUID().replace(/-/g, "");
  try {
    return await buildArtifactDir(target, async (staging) => {
      await fs.mkdir(path.join(staging, MLMODEL.code), { recursive: true });
      await fs.copyFile(LOADER_FILE, path.join(staging, MLMODEL.code, `${MLMODEL.loader}.py`));
      await writeData(path.join(staging, MLMODEL.data), input, src);
      const split = { columns: ["userId", "movieId"], data: examplePairs(src, input.example) };
      await fs.writeFile(path.join(staging, MLMODEL.inputExample), JSON.stringify(split));
      await fs.writeFile(path.join(staging, MLMODEL.servingExample), `${JSON.stringify({ dataframe_split: split }, null, 2)}\n`);
      for (const [name, text] of Object.entries(environmentFiles())) await fs.writeFile(path.join(staging, name), text);
      const before = await walkFiles(staging);
      const sizeBytes = await sizeOf(staging, before);
      await fs.writeFile(path.join(staging, MLMODEL.file), mlmodelText(input, src, uuid, sizeBytes));
      return { dir: target, modelUuid: uuid, files: [...before, MLMODEL.file].sort(), sizeBytes };
    });
  } catch (error) {
    throw asStorageError(error, target);
  }
}

/** What data/ms-model.json says. */
const ArraySchema = v.object({
  name: v.string(),
  dtype: v.picklist(["int32", "float32", "float64"]),
  length: v.pipe(v.number(), v.integer(), v.minValue(0)),
  path: v.string(),
});
const MsModelSpecSchema = v.object({
  format: v.literal(MS_MODEL_FORMAT),
  kind: v.picklist(["keras", "als"]),
  model: v.optional(v.string()),
  modelDigest: v.optional(v.string()),
  features: v.optional(v.string()),
  factors: v.object({
    dir: v.string(),
    digest: v.string(),
    rank: v.pipe(v.number(), v.integer(), v.minValue(1)),
    arrays: v.array(ArraySchema),
  }),
  coldStart: v.object({ mean: v.pipe(v.number(), v.finite()), arrays: v.array(ArraySchema) }),
});
export type MsModelSpec = v.InferOutput<typeof MsModelSpecSchema>;

/** The MLmodel's part ms reads back: its flavors name the ms one. */
const MlmodelHead = v.object({ flavors: v.object({ ms: v.object({ data: v.string(), format: v.number(), kind: v.string() }) }) });

/**
 * The ms flavor of an MLflow Model directory (one `writeMlflowModel` wrote, downloaded or not):
 * the model kind, the ms directories `openModel` takes, and the cold-start rule. A directory without the ms flavor is
 * a CorruptArtifactError naming its MLmodel.
 */
export async function readMlflowModel(
  dir: string,
): Promise<{ kind: ModelKind; dirs: ModelDirs; spec: MsModelSpec; coldStart: ColdStartRule }> {
  const file = path.join(dir, MLMODEL.file);
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    throw new MissingArtifactError(`${file}: no MLmodel file (not an MLflow Model directory)`, { cause: error });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (error) {
    throw new CorruptArtifactError(`${file}: not YAML (${(error as Error).message})`, { cause: error });
  }
  const head = v.safeParse(MlmodelHead, doc);
  if (!head.success) throw new CorruptArtifactError(`${file}: has no ms flavor (a model ms did not write, or an MLmodel it cannot read)`);
  const data = path.join(dir, head.output.flavors.ms.data);
  const spec = await parseJsonFile(path.join(data, MLMODEL.spec), MsModelSpecSchema);
  const dirs: ModelDirs = {
    factors: path.join(data, spec.factors.dir),
    ...(spec.kind === "keras" && spec.model ? { model: path.join(data, spec.model) } : {}),
  };
  const cold: Record<string, Int32Array | Float32Array | Float64Array> = {};
  for (const a of spec.coldStart.arrays) cold[a.name] = await readArray(data, a);
  const { movieIds, movieBias, userIds, userBias } = cold;
  if (
    !(
      movieIds instanceof Int32Array &&
      userIds instanceof Int32Array &&
      movieBias instanceof Float64Array &&
      userBias instanceof Float64Array
    )
  )
    throw new CorruptArtifactError(
      `${path.join(data, MLMODEL.spec)}: coldStart lacks movieIds, userIds (int32), movieBias, userBias (float64)`,
    );
  const coldStart = ColdStartRule.fromTables({ mean: spec.coldStart.mean, movieIds, movieBias, userIds, userBias });
  return { kind: spec.kind, dirs, spec, coldStart };
}
