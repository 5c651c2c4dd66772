/**
 * All of @ms/fm's file I/O: the fm artifact, written and read here and nowhere else. It holds
 * the out-of-fold feature values of every rating (`features.bin`, float32, rows x width, in the
 * ratings' order), the train mask (`train_mask.bin`, one byte per rating), the full fit's
 * predictions of the test rows (`test_predictions.bin`, float32, test rows in ratings order) and
 * the full fit's `StackedTables`, written generically: every typed-array field is a file
 * `tables/<field>.bin` (little-endian, its type and length in the manifest; a nested group's fields
 * get dotted names, `time.dayBias`) and every scalar field sits in the manifest's details, so a
 * field the sampler adds to StackedTables flows through without a change here. Reading parses the details with a valibot schema, checks every file's
 * size against them, refuses non-finite values, and checks the tables against `StackedTablesSchema`:
 * a bad file is a CorruptArtifactError naming it. The ratings and factors inputs come in through
 * the readers of the packages that wrote them (@ms/etl, @ms/als).
 */
import {
  asStorageError,
  buildArtifactDir,
  checkJson,
  CorruptArtifactError,
  DigestSchema,
  digestFile,
  Fields,
  InterruptedError,
  MissingArtifactError,
  MsError,
  readManifest,
  SplitSpecSchema,
  writeManifest,
  type Digest,
  type Manifest,
  type ProducedBy,
  type SplitSpec,
} from "@ms/contracts";
import { promises as fs } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import type { StackedTables } from "./stacked.js";

export const FM_KIND = "fm";
export const FM_FILES = { features: "features.bin", trainMask: "train_mask.bin", testPredictions: "test_predictions.bin" } as const;
const TABLES_DIR = "tables";

/** The typed arrays a table field may be, by the name the manifest records. */
const DTYPES = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
} as const;
type Dtype = keyof typeof DTYPES;
type TypedArray = InstanceType<(typeof DTYPES)[Dtype]>;
const DTYPE_NAMES = Object.keys(DTYPES) as Dtype[];

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Scalar = v.union([v.number(), v.boolean(), v.string()]);

/** The tables as the manifest records them: scalar fields by name, and one entry per typed-array field. */
/** A field's name: letters and digits, dotted for a nested group's fields (no `__proto__`, nothing to escape). */
const FieldName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, "a field name (letters and digits, dotted)"),
);

export const TablesRecordSchema = v.object({
  scalars: v.pipe(
    v.unknown(),
    v.check((input) => !Array.isArray(input), "Invalid type: Expected Object but received Array"),
    v.record(FieldName, Scalar),
  ),
  arrays: v.array(v.object({ name: FieldName, dtype: v.picklist(DTYPE_NAMES), length: count })),
});
export type TablesRecord = v.InferOutput<typeof TablesRecordSchema>;

/** What fm's manifest details hold: what the features are, the split and inputs they were made from, each fit. */
export interface FmDetails {
  model: "bayes" | "als" | "none";
  columns: string[];
  width: number;
  /** Ratings, and of them the test part's. */
  rows: number;
  testRows: number;
  /** The evaluation split, as the als manifest recorded it. */
  split: SplitSpec;
  /** The ratings given (their artifact digest, or the file's sha256) and the factors artifact the features belong to. */
  ratings: { digest: Digest; rows: number };
  factors: { digest: Digest };
  /** Each fit in order (folds, then the whole training part): its seconds and Gibbs sweeps (0 for als). */
  fits: { fit: number; seconds: number; samples: number }[];
  /** The bayes model's feature groups the fits used (after `auto`), and the first fold's trials that chose them. Absent in outputs written before `auto`. */
  groups?: { implicitUser: boolean; implicitMovie: boolean; time: boolean };
  trials?: { group: "implicitUser" | "implicitMovie" | "time"; rmseWithout: number; rmseWith: number; se: number; kept: boolean }[];
  /** The full fit's tables (absent for model none). */
  tables?: TablesRecord;
}

export const FmDetailsSchema = v.object({
  model: v.picklist(["bayes", "als", "none"]),
  columns: v.array(v.string()),
  width: count,
  rows: count,
  testRows: count,
  split: SplitSpecSchema,
  ratings: v.object({ digest: DigestSchema, rows: count }),
  factors: v.object({ digest: DigestSchema }),
  fits: v.array(v.object({ fit: count, seconds: v.number(), samples: count })),
  groups: v.optional(v.object({ implicitUser: v.boolean(), implicitMovie: v.boolean(), time: v.boolean() })),
  trials: v.optional(
    v.array(
      v.object({
        group: v.picklist(["implicitUser", "implicitMovie", "time"]),
        rmseWithout: v.number(),
        rmseWith: v.number(),
        se: v.number(),
        kept: v.boolean(),
      }),
    ),
  ),
  tables: v.optional(TablesRecordSchema),
}) satisfies v.GenericSchema<unknown, FmDetails>;

const finiteArray = (name: string) => v.custom<Float32Array>((x) => x instanceof Float32Array, `${name} must be a Float32Array`);

/**
 * The fields every consumer of the full fit relies on; more fields (the sampler's feature
 * groups) pass through as they were written.
 */
export const StackedTablesSchema = v.looseObject({
  model: v.picklist(["bayes", "als"]),
  rank: v.pipe(v.number(), v.integer(), v.minValue(1)),
  mu: v.number(),
  withBiases: v.boolean(),
  userIds: v.instance(Int32Array),
  itemIds: v.instance(Int32Array),
  userBias: finiteArray("userBias"),
  itemBias: finiteArray("itemBias"),
  userLogCount: finiteArray("userLogCount"),
  itemLogCount: finiteArray("itemLogCount"),
  userFactors: finiteArray("userFactors"),
  itemFactors: finiteArray("itemFactors"),
  userImplicit: finiteArray("userImplicit"),
}) satisfies v.GenericSchema<unknown, StackedTables>;

/** What the fm step publishes, in memory. */
export interface FmArtifactInput<P, M> {
  details: Omit<FmDetails, "tables">;
  values: Float32Array;
  trainMask: Uint8Array;
  testPredictions: Float32Array;
  tables?: StackedTables;
  params: P;
  metrics: M;
  producedBy: ProducedBy;
  signal?: AbortSignal;
}

/** A loaded fm artifact. */
export interface FmArtifact {
  dir: string;
  manifest: Manifest<Record<string, unknown>, Record<string, unknown>, FmDetails>;
  details: FmDetails;
  values: Float32Array;
  trainMask: Uint8Array;
  testPredictions: Float32Array;
  /** The full fit (absent for fm_model=none). */
  tables?: StackedTables;
}

function dtypeOf(a: ArrayBufferView): Dtype | undefined {
  return DTYPE_NAMES.find((d) => a instanceof DTYPES[d]);
}

/**
 * Splits the tables into the manifest's record (scalars, array entries) and the arrays to write.
 * A nested object (the sampler's `time`, `ordinal` groups) is flattened with dotted names
 * (`time.dayBias`); an absent optional field is left out.
 */
export function tablesRecord(t: StackedTables): { record: TablesRecord; arrays: Map<string, TypedArray> } {
  const scalars: Record<string, number | boolean | string> = {};
  const entries: TablesRecord["arrays"] = [];
  const arrays = new Map<string, TypedArray>();
  const visit = (prefix: string, object: object) => {
    for (const [key, value] of Object.entries(object)) {
      const name = `${prefix}${key}`;
      if (value === undefined) continue;
      if (ArrayBuffer.isView(value)) {
        const dtype = dtypeOf(value);
        if (!dtype) throw new Error(`fm: StackedTables.${name} is a ${value.constructor.name}, which the fm artifact cannot hold`);
        entries.push({ name, dtype, length: (value as TypedArray).length });
        arrays.set(name, value as TypedArray);
      } else if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") {
        if (typeof value === "number" && !Number.isFinite(value))
          throw new Error(`fm: StackedTables.${name} is ${value}; nothing non-finite is published`);
        scalars[name] = value;
      } else if (typeof value === "object" && value !== null && !Array.isArray(value)) visit(`${name}.`, value);
      else
        throw new Error(
          `fm: StackedTables.${name} is neither a typed array, a scalar nor an object of them; the fm artifact cannot hold it`,
        );
    }
  };
  visit("", t);
  return { record: { scalars, arrays: entries }, arrays };
}

/** Sets `value` at a dotted name, creating the nested objects on the way. */
function setPath(target: Record<string, unknown>, name: string, value: unknown): void {
  const keys = name.split(".");
  let at = target;
  for (const key of keys.slice(0, -1)) {
    const next = at[key];
    if (typeof next === "object" && next !== null) at = next as Record<string, unknown>;
    else {
      const made: Record<string, unknown> = {};
      at[key] = made;
      at = made;
    }
  }
  at[keys[keys.length - 1]] = value;
}

/** The first non-finite value of a float array, as an error message, or undefined. */
function nonFinite(a: ArrayLike<number>, what: string): string | undefined {
  for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return `${what}[${i}] is ${a[i]}`;
  return undefined;
}

async function writeArray(dir: string, rel: string, a: ArrayBufferView): Promise<void> {
  const file = path.join(dir, rel);
  try {
    await fs.writeFile(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  } catch (error) {
    throw asStorageError(error, file);
  }
}

/**
 * Publishes a complete fm artifact at `outDir` (staged beside it, renamed into place). A
 * non-finite feature, prediction or table value is refused before anything is published.
 */
export async function writeFmArtifact<P, M>(outDir: string, input: FmArtifactInput<P, M>): Promise<Manifest<P, M, FmDetails>> {
  for (const [a, what] of [
    [input.values, "features"],
    [input.testPredictions, "test predictions"],
  ] as const) {
    const bad = nonFinite(a, what);
    if (bad) throw new Error(`fm: ${bad}; nothing non-finite is published`);
  }
  const split = input.tables ? tablesRecord(input.tables) : undefined;
  return buildArtifactDir(path.resolve(outDir), async (staging) => {
    const files: string[] = [FM_FILES.features, FM_FILES.trainMask, FM_FILES.testPredictions];
    await writeArray(staging, FM_FILES.features, input.values);
    await writeArray(staging, FM_FILES.trainMask, input.trainMask);
    await writeArray(staging, FM_FILES.testPredictions, input.testPredictions);
    if (split) files.push(...(await writeTableFiles(staging, split.arrays)));
    if (input.signal?.aborted) {
      const reason: unknown = input.signal.reason;
      throw reason instanceof MsError ? reason : new InterruptedError("fm: interrupted while writing the features");
    }
    const details: FmDetails = { ...input.details, ...(split ? { tables: split.record } : {}) };
    return writeManifest(staging, {
      kind: FM_KIND,
      files,
      params: input.params,
      metrics: input.metrics,
      details,
      producedBy: input.producedBy,
    });
  });
}

/** Writes each array as `tables/<name>.bin`, refusing a non-finite float first; the relative paths written. */
async function writeTableFiles(dir: string, arrays: ReadonlyMap<string, TypedArray>): Promise<string[]> {
  for (const [name, a] of arrays) {
    const bad = a instanceof Float32Array || a instanceof Float64Array ? nonFinite(a, name) : undefined;
    if (bad) throw new Error(`fm: the full fit's ${bad}; nothing non-finite is published`);
  }
  await fs.mkdir(path.join(dir, TABLES_DIR)).catch((error: unknown) => {
    throw asStorageError(error, path.join(dir, TABLES_DIR));
  });
  const files: string[] = [];
  for (const [name, a] of arrays) {
    const rel = `${TABLES_DIR}/${name}.bin`;
    await writeArray(dir, rel, a);
    files.push(rel);
  }
  return files;
}

/**
 * Writes the full fit's tables into an artifact directory being built (`tables/<field>.bin`), as
 * the fm artifact holds them: a model that serves new pairs (keras') keeps them this way too.
 * Returns the record for its manifest and the files to list.
 */
export async function writeTablesDir(dir: string, tables: StackedTables): Promise<{ record: TablesRecord; files: string[] }> {
  const { record, arrays } = tablesRecord(tables);
  return { record, files: await writeTableFiles(dir, arrays) };
}

/** Reads the tables `writeTablesDir` wrote, checked as the fm artifact's are. */
export function readTablesDir(dir: string, record: TablesRecord): Promise<StackedTables> {
  return readTables(dir, record);
}

/** Reads `rel` as `length` values of `dtype`; a missing file or a size the manifest does not give is named. */
async function readArray(dir: string, rel: string, dtype: Dtype, length: number): Promise<TypedArray> {
  const file = path.join(dir, rel);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new MissingArtifactError(`${file}: missing (part of the fm artifact)`);
    throw error;
  }
  const Ctor = DTYPES[dtype];
  const expected = length * Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== expected)
    throw new CorruptArtifactError(`${file}: ${bytes.byteLength} bytes, the manifest says ${length} ${dtype} values (${expected} bytes)`);
  // A copy into an aligned buffer: a Buffer from the pool may start at any offset.
  const array = new Ctor(new Uint8Array(bytes).buffer);
  if (array instanceof Float32Array || array instanceof Float64Array) {
    const bad = nonFinite(array, path.basename(rel, ".bin"));
    if (bad) throw new CorruptArtifactError(`${file}: ${bad}; the fm artifact holds finite numbers only`);
  }
  return array;
}

/** Rebuilds the full fit's tables from their files and checks them: types, then sizes per user / movie. */
async function readTables(dir: string, record: TablesRecord): Promise<StackedTables> {
  const assembled: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(record.scalars)) setPath(assembled, name, value);
  for (const a of record.arrays) setPath(assembled, a.name, await readArray(dir, `${TABLES_DIR}/${a.name}.bin`, a.dtype, a.length));
  const where = path.join(dir, TABLES_DIR);
  const t: StackedTables = checkJson(assembled, StackedTablesSchema, where);
  const users = t.userIds.length;
  const movies = t.itemIds.length;
  for (const [name, value] of Object.entries(t)) {
    if (!ArrayBuffer.isView(value) || name === "userIds" || name === "itemIds") continue;
    const n = (value as TypedArray).length;
    const per = name.startsWith("user") ? users : name.startsWith("item") ? movies : undefined;
    const rank = name.endsWith("Factors") || name.endsWith("Implicit") ? t.rank : undefined;
    const bad = per !== undefined && (rank !== undefined ? n !== per * rank : per === 0 ? n !== 0 : n % per !== 0);
    if (bad)
      throw new CorruptArtifactError(
        `${path.join(where, `${name}.bin`)}: ${n} values for ${per} ${name.startsWith("user") ? "users" : "movies"}${rank ? ` x rank ${rank}` : ""}`,
      );
  }
  return t;
}

/** Loads an fm artifact directory and checks every file against its manifest. */
export async function readFmArtifact(dir: string): Promise<FmArtifact> {
  const abs = path.resolve(dir);
  const manifest = await readManifest(abs, FM_KIND, { params: Fields, metrics: Fields, details: FmDetailsSchema });
  const d = manifest.details;
  const file = path.join(abs, "manifest.json");
  if (d.width !== d.columns.length) throw new CorruptArtifactError(`${file}: details.width ${d.width} but ${d.columns.length} columns`);
  if (d.model === "none" ? d.tables !== undefined : d.tables === undefined)
    throw new CorruptArtifactError(`${file}: details.tables ${d.model === "none" ? "given" : "missing"} for model ${d.model}`);
  const values = await readArray(abs, FM_FILES.features, "float32", d.rows * d.width);
  const trainMask = await readArray(abs, FM_FILES.trainMask, "uint8", d.rows);
  let tests = 0;
  for (let i = 0; i < trainMask.length; i++) {
    if (trainMask[i] > 1) throw new CorruptArtifactError(`${path.join(abs, FM_FILES.trainMask)}: byte ${i} is ${trainMask[i]}, not 0 or 1`);
    tests += 1 - trainMask[i];
  }
  if (tests !== d.testRows)
    throw new CorruptArtifactError(`${path.join(abs, FM_FILES.trainMask)}: ${tests} test rows, the manifest says ${d.testRows}`);
  const testPredictions = await readArray(abs, FM_FILES.testPredictions, "float32", d.model === "none" ? 0 : d.testRows);
  const tables = d.tables ? await readTables(abs, d.tables) : undefined;
  return {
    dir: abs,
    manifest,
    details: d,
    values: values as Float32Array,
    trainMask: trainMask as Uint8Array,
    testPredictions: testPredictions as Float32Array,
    ...(tables ? { tables } : {}),
  };
}

/** Ratings as typed columns, read through @ms/etl (loaded on first use: it loads DuckDB). */
export async function readRatings(pathOrDir: string, timestamps = false) {
  const { readRatingsColumns } = await import("@ms/etl");
  return readRatingsColumns(pathOrDir, { timestamps });
}

/** The factors artifact, read through @ms/als. */
export async function readFactorsArtifact(dir: string) {
  const { readFactors } = await import("@ms/als");
  return readFactors(dir);
}

/**
 * The digests that name the ratings at `pathOrDir`: the etl artifact's digest and its Parquet
 * file's sha256 (hashed when given a bare file). `digest` is the one to record.
 */
export async function ratingsDigests(pathOrDir: string): Promise<{ digest: Digest; all: Digest[] }> {
  const { resolveRatingsFile } = await import("@ms/etl");
  const { file, manifest } = await resolveRatingsFile(pathOrDir);
  const entry = manifest?.files.find((f) => f.path === path.basename(file));
  const fileDigest: Digest = entry ? `sha256:${entry.sha256}` : (await digestFile(file)).digest;
  return { digest: manifest?.digest ?? fileDigest, all: [manifest?.digest ?? fileDigest, fileDigest] };
}
