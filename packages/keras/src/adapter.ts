/**
 * All of @ms/keras's file I/O: ratings and factors come in through the readers of the packages
 * that wrote them (@ms/etl, @ms/als); the model goes out as TensorFlow.js layers format
 * (`model.json` + `weights.bin`), written and read with in-memory IO handlers because plain tfjs
 * has no `file://` handler outside tfjs-node. The stacked model's full-fit tables go beside it,
 * written by @ms/fm's `writeTablesDir`; the stacked features come in through @ms/fm's reader.
 */
import type { LayersModel } from "@tensorflow/tfjs";
import {
  asStorageError,
  CorruptArtifactError,
  DigestSchema,
  SplitSpecSchema,
  digestFile,
  Fields,
  MissingArtifactError,
  MsError,
  parseJsonFile,
  readManifest,
  recordOf,
  type Digest,
  type Manifest,
} from "@ms/contracts";
import type { io } from "@tensorflow/tfjs";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Tf } from "./backend.js";
import { TablesRecordSchema, type StackedTables } from "@ms/fm";
import * as v from "valibot";
import { FEATURE_SETS } from "./features.js";

/**
 * The readers are imported on first use: they load DuckDB, and importing @ms/keras must stay
 * cheap for a driver whose steps are all cached.
 */
export async function readFactors(dir: string) {
  const { readFactors: read } = await import("@ms/als");
  return read(dir);
}

export async function readRatingsColumns(pathOrDir: string) {
  const { readRatingsColumns: read } = await import("@ms/etl");
  return read(pathOrDir);
}

/** The stacked features: the fm step's artifact, read through its own reader. */
export async function readFeatures(dir: string) {
  const { readFmArtifact } = await import("@ms/fm");
  return readFmArtifact(dir);
}

/**
 * The digests that identify the ratings at `pathOrDir`, to compare with those a factors manifest
 * records: the ratings artifact's digest and its Parquet file's sha256 (from the etl manifest,
 * or hashed when given a bare file). `digest` is the one to report. Older factors manifests
 * record only the artifact digest, so a bare file inside an etl output also answers to it.
 */
export async function ratingsDigests(pathOrDir: string): Promise<{ file: string; digest: Digest; all: Digest[] }> {
  const { resolveRatingsFile } = await import("@ms/etl");
  const { file, manifest } = await resolveRatingsFile(pathOrDir);
  const entry = manifest?.files.find((f) => f.path === path.basename(file));
  const fileDigest: Digest = entry ? `sha256:${entry.sha256}` : (await digestFile(file)).digest;
  const digest = manifest?.digest ?? fileDigest;
  const all = [digest, fileDigest];
  // A bare file inside an etl output: that artifact's digest names it too, if the manifest lists these bytes.
  if (!manifest) {
    const around = await readManifest(path.dirname(file), "ratings").catch(() => undefined);
    const listed = around?.files.find((f) => f.path === path.basename(file));
    if (around && listed && `sha256:${listed.sha256}` === fileDigest) all.push(around.digest);
  }
  return { file, digest, all };
}

export const MODEL_FILE = "model.json";
export const WEIGHTS_FILE = "weights.bin";

/** One weight of `model.json`'s weights manifest, as tfjs describes it. */
const WeightSpecSchema = v.object({
  name: v.string(),
  shape: v.array(v.pipe(v.number(), v.integer(), v.minValue(0))),
  dtype: v.picklist(["float32", "int32", "bool", "string", "complex64"]),
  group: v.optional(v.picklist(["model", "optimizer"])),
  quantization: v.optional(
    v.object({ scale: v.optional(v.number()), min: v.optional(v.number()), dtype: v.picklist(["uint16", "uint8", "float16"]) }),
  ),
}) satisfies v.GenericSchema<unknown, io.WeightsManifestEntry>;

/** `model.json` of the tfjs layers format: the topology tfjs rebuilds, and where each weight's bytes are. */
const ModelJsonSchema = v.object({
  modelTopology: recordOf(v.unknown()),
  format: v.optional(v.string()),
  generatedBy: v.optional(v.string()),
  convertedBy: v.optional(v.nullable(v.string())),
  trainingConfig: v.optional(v.unknown()),
  weightsManifest: v.array(v.object({ paths: v.array(v.string()), weights: v.array(WeightSpecSchema) })),
});
type ModelJson = v.InferOutput<typeof ModelJsonSchema>;

/** The layers format's topology is a JSON object; tfjs types it wider (an ArrayBuffer for graph models). */
function topologyOf(topology: object | ArrayBuffer | undefined): Record<string, unknown> {
  if (topology === undefined || topology instanceof ArrayBuffer) throw new Error("tfjs handed over a model without a JSON topology");
  return { ...topology };
}

/** Writes `model.json` and `weights.bin` into `dir` (the layout `tf.loadLayersModel('file://...')` reads). */
export async function saveModelFiles(tf: Tf, model: LayersModel, dir: string): Promise<string[]> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights =
        artifacts.weightData === undefined
          ? new ArrayBuffer(0)
          : tf.io.concatenateArrayBuffers(artifacts.weightData as ArrayBuffer | ArrayBuffer[]);
      const json: ModelJson = {
        modelTopology: topologyOf(artifacts.modelTopology),
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
      };
      const modelFile = path.join(dir, MODEL_FILE);
      const weightsFile = path.join(dir, WEIGHTS_FILE);
      try {
        await fs.writeFile(weightsFile, new Uint8Array(weights));
        await fs.writeFile(modelFile, JSON.stringify(json));
      } catch (error) {
        throw asStorageError(error, dir);
      }
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON", weightDataBytes: weights.byteLength } };
    }),
  );
  return [MODEL_FILE, WEIGHTS_FILE];
}

/** Reads a model written by `saveModelFiles` (or any single-shard tfjs layers model). */
export async function loadModelFiles(tf: Tf, dir: string): Promise<LayersModel> {
  const modelFile = path.join(dir, MODEL_FILE);
  let json: ModelJson;
  try {
    json = await parseJsonFile(modelFile, ModelJsonSchema);
  } catch (error) {
    if (error instanceof MsError) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new MissingArtifactError(`${modelFile}: no such model file`, { cause: error });
    throw new CorruptArtifactError(`${modelFile}: not a readable model.json (${(error as Error).message})`, { cause: error });
  }
  const buffers: ArrayBuffer[] = [];
  const specs: io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const file = path.join(dir, p);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(file);
      } catch (error) {
        throw new MissingArtifactError(`${file}: weights file named by ${modelFile} is missing`, { cause: error });
      }
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
  }
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: tf.io.concatenateArrayBuffers(buffers),
        ...(json.format ? { format: json.format } : {}),
      }),
    );
  } catch (error) {
    throw new CorruptArtifactError(`${dir}: the model cannot be rebuilt (${(error as Error).message.split("\n")[0]})`, { cause: error });
  }
}

/**
 * The manifest of a keras-model directory: checked for kind, and its details for what loading
 * and scoring a model rely on (`KerasModelDetailsSchema`). P, M and X are the caller's reading of
 * the rest (the step's own params, metrics and details types, declared in keras.ts).
 */
export async function readModelManifest<P, M, X extends KerasModelDetails>(dir: string): Promise<Manifest<P, M, X>> {
  const manifest = await readManifest(dir, "keras-model", { params: Fields, metrics: Fields, details: KerasModelDetailsSchema });
  return manifest as Manifest<P, M, X>;
}

export const STACKED_TABLES_FILE = "stacked_tables.bin";

/** How `stacked_tables.bin` is laid out: its scalars, and its arrays in file order (int32 ids, then float32 values, little-endian). */
export interface StackedTablesLayout {
  rank: number;
  mu: number;
  withBiases: boolean;
  users: number;
  movies: number;
  arrays: readonly string[];
}

const StackedTablesLayoutSchema = v.object({
  rank: v.pipe(v.number(), v.integer(), v.minValue(0)),
  mu: v.number(),
  withBiases: v.boolean(),
  users: v.pipe(v.number(), v.integer(), v.minValue(0)),
  movies: v.pipe(v.number(), v.integer(), v.minValue(0)),
  arrays: v.pipe(v.array(v.string()), v.readonly()),
}) satisfies v.GenericSchema<unknown, StackedTablesLayout>;

/**
 * The details of a keras-model manifest that loading and scoring rely on; the rest (history,
 * columns, ratings...) is the step's record and passes through unchecked.
 */
const KerasModelDetailsShape = v.object({
  backend: v.picklist(["tensorflow", "wasm", "cpu", "fused"]),
  rank: v.pipe(v.number(), v.integer(), v.minValue(0)),
  inputWidth: v.pipe(v.number(), v.integer(), v.minValue(1)),
  features: v.picklist(FEATURE_SETS),
  // `tables`: the full fit as the fm artifact holds it (tables/<field>.bin); `file` + `layout`: models from before the fm step.
  stacked: v.optional(
    v.object({
      model: v.picklist(["bayes", "als"]),
      tables: v.optional(TablesRecordSchema),
      file: v.optional(v.string()),
      layout: v.optional(StackedTablesLayoutSchema),
    }),
  ),
  split: SplitSpecSchema,
  factors: v.object({ digest: DigestSchema }),
});
export type KerasModelDetails = v.InferOutput<typeof KerasModelDetailsShape>;
export const KerasModelDetailsSchema = v.looseObject(KerasModelDetailsShape.entries);

const TABLE_ARRAYS = [
  "userIds",
  "itemIds",
  "userBias",
  "itemBias",
  "userLogCount",
  "itemLogCount",
  "userFactors",
  "itemFactors",
  "userImplicit",
] as const;

/** Entries per array, given the counts and the rank. */
function tableLengths(l: Pick<StackedTablesLayout, "rank" | "users" | "movies">): Record<(typeof TABLE_ARRAYS)[number], number> {
  return {
    userIds: l.users,
    itemIds: l.movies,
    userBias: l.users,
    itemBias: l.movies,
    userLogCount: l.users,
    itemLogCount: l.movies,
    userFactors: l.users * l.rank,
    itemFactors: l.movies * l.rank,
    userImplicit: l.users * l.rank,
  };
}

/**
 * Reads the full fit's tables of a model saved before the fm step (`stacked_tables.bin`, one flat
 * little-endian file of nine arrays, its layout in the manifest); a size that does not match the
 * layout is a corrupt artifact. Models since keep them as the fm artifact does (`readTablesDir`).
 */
export async function readStackedTables(dir: string, model: "bayes" | "als", layout: StackedTablesLayout): Promise<StackedTables> {
  const file = path.join(dir, STACKED_TABLES_FILE);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new MissingArtifactError(`${file}: missing (the stacked model's tables)`);
    throw error;
  }
  const lengths = tableLengths(layout);
  const expected = TABLE_ARRAYS.reduce((s, name) => s + 4 * lengths[name], 0);
  if (bytes.byteLength !== expected)
    throw new CorruptArtifactError(`${file}: ${bytes.byteLength} bytes, the manifest's layout says ${expected}`);
  // A copy into an aligned buffer: a Buffer from the pool may start at any offset.
  const buffer = new Uint8Array(bytes).buffer;
  let offset = 0;
  const view = <T extends Int32Array | Float32Array>(make: (b: ArrayBuffer, o: number, n: number) => T, n: number): T => {
    const v = make(buffer, offset, n);
    offset += 4 * n;
    return v;
  };
  const ints = (n: number) => view((b, o, k) => new Int32Array(b, o, k), n);
  const floats = (n: number) => view((b, o, k) => new Float32Array(b, o, k), n);
  return {
    model,
    rank: layout.rank,
    mu: layout.mu,
    withBiases: layout.withBiases,
    userIds: ints(lengths.userIds),
    itemIds: ints(lengths.itemIds),
    userBias: floats(lengths.userBias),
    itemBias: floats(lengths.itemBias),
    userLogCount: floats(lengths.userLogCount),
    itemLogCount: floats(lengths.itemLogCount),
    userFactors: floats(lengths.userFactors),
    itemFactors: floats(lengths.itemFactors),
    userImplicit: floats(lengths.userImplicit),
  };
}
