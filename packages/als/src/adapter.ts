/**
 * All of @ms/als's file I/O: the factors artifact (two Parquet files in Spark ALSModel's factor
 * schema, `id` INT32 + `features` LIST<FLOAT>, plus the manifest) written and read with DuckDB,
 * and the ratings input read through @ms/etl's typed column reader.
 */
import type { DuckDBConnection, DuckDBListVector, DuckDBType, DuckDBVector } from "@duckdb/node-api";
import {
  asStorageError,
  BadInputError,
  buildArtifactDir,
  CorruptArtifactError,
  Fields,
  InterruptedError,
  MsError,
  MissingArtifactError,
  readManifest,
  writeManifest,
  type Manifest,
  type ProducedBy,
} from "@ms/contracts";
import {
  duckVectorItems as vectorItems,
  readRatingsColumns,
  resolveRatingsFile,
  sqlString,
  withDuckDB,
  type RatingsColumns,
} from "@ms/etl";
import { stat } from "node:fs/promises";
import path from "node:path";
import { factorsToArrow, type FactorsArrow } from "./arrow.js";
import { FACTORS_FILES, FactorsDetailsSchema, type Factors, type FactorsDetails, type FactorTables } from "./types.js";
import { ALS_VERSION } from "./version.js";

/** DuckDB's standard vector size; a chunk holds at most this many rows. */
const CHUNK_ROWS = 2048;

/**
 * Appends the factors as one FLOAT column per dimension (flat vectors copy straight from typed
 * arrays) and lets DuckDB assemble the lists in the COPY: far cheaper than building a JS list
 * value per row.
 */
async function writeFactorFile(conn: DuckDBConnection, file: string, ids: Int32Array, factors: Float32Array, rank: number): Promise<void> {
  // Loaded here rather than at the top: the native addon costs ~0.35 s to load.
  const { DuckDBDataChunk, FLOAT, INTEGER } = await import("@duckdb/node-api");
  const n = ids.length;
  if (factors.length !== n * rank) throw new Error(`factor matrix holds ${factors.length} values, expected ${n} x ${rank}`);
  const cols = Array.from({ length: rank }, (_, j) => `f${j}`);
  await conn.run(`CREATE OR REPLACE TEMP TABLE factors (id INTEGER, ${cols.map((c) => `${c} FLOAT`).join(", ")})`);
  const appender = await conn.createAppender("factors");
  const types: DuckDBType[] = [INTEGER, ...cols.map(() => FLOAT)];
  const column: number[][] = Array.from({ length: rank + 1 }, () => []);
  for (let start = 0; start < n; start += CHUNK_ROWS) {
    const count = Math.min(CHUNK_ROWS, n - start);
    const chunk = DuckDBDataChunk.create(types, count);
    for (const c of column) c.length = count;
    for (let r = 0; r < count; r++) {
      const row = start + r;
      column[0][r] = ids[row];
      const base = row * rank;
      for (let j = 0; j < rank; j++) column[j + 1][r] = factors[base + j];
    }
    for (let c = 0; c <= rank; c++) chunk.setColumnValues(c, column[c]);
    appender.appendDataChunk(chunk);
  }
  appender.closeSync();
  // DuckDB says a full or read-only disk only in its message: a storage error (exit 8), naming the file.
  await conn
    .run(
      `COPY (SELECT id, [${cols.join(", ")}]::FLOAT[] AS features FROM factors ORDER BY id) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`,
    )
    .catch((error: unknown) => {
      throw asStorageError(error, file);
    });
  await conn.run("DROP TABLE factors");
}

/** Writes `user_factors.parquet` and `item_factors.parquet` into an existing directory. */
export async function writeFactors(dir: string, tables: FactorTables): Promise<void> {
  await withDuckDB(async (conn) => {
    await writeFactorFile(conn, path.join(dir, FACTORS_FILES.users), tables.userIds, tables.userFactors, tables.rank);
    await writeFactorFile(conn, path.join(dir, FACTORS_FILES.items), tables.itemIds, tables.itemFactors, tables.rank);
  });
}

export interface FactorsArtifactInput<P, M> {
  tables: FactorTables;
  details: FactorsDetails;
  params: P;
  metrics: M;
  producedBy?: ProducedBy;
  /** Checked once the files are written: an abort then discards the staging directory, nothing is published. */
  signal?: AbortSignal;
}

/**
 * Publishes a complete factors artifact at `outDir` (staged beside it, renamed into place). The
 * als step uses it; so can a test that needs factors without training them.
 */
export async function writeFactorsArtifact<P, M>(
  outDir: string,
  input: FactorsArtifactInput<P, M>,
): Promise<Manifest<P, M, FactorsDetails>> {
  return buildArtifactDir(path.resolve(outDir), async (staging) => {
    await writeFactors(staging, input.tables);
    if (input.signal?.aborted) {
      const reason: unknown = input.signal.reason;
      throw reason instanceof MsError ? reason : new InterruptedError("als: interrupted while writing the factors");
    }
    return writeManifest(staging, {
      kind: "factors",
      files: [FACTORS_FILES.users, FACTORS_FILES.items],
      params: input.params,
      metrics: input.metrics,
      details: input.details,
      producedBy: input.producedBy ?? { step: "als", version: ALS_VERSION },
    });
  });
}

/** One factor table read back: ids ascending, factors row-major. */
export interface FactorFile {
  rank: number;
  ids: Int32Array;
  factors: Float32Array;
}

/**
 * Reads one factor file, checking schema, nulls, a single list length and unique ids. The list
 * elements are copied straight out of DuckDB's flat child vector.
 */
export async function readFactorFile(file: string): Promise<FactorFile> {
  try {
    await stat(file);
  } catch (error) {
    throw new MissingArtifactError(`${file}: missing factor file`, { cause: error });
  }
  return withDuckDB(async (conn) => {
    const src = `read_parquet(${sqlString(file)})`;
    let schema;
    try {
      schema = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`)).getRows();
    } catch (error) {
      throw new CorruptArtifactError(`${file}: not a readable Parquet file (${(error as Error).message.split("\n")[0]})`, { cause: error });
    }
    const types = new Map(schema.map((r) => [String(r[0]), String(r[1])]));
    if (types.get("id") !== "INTEGER" || types.get("features") !== "FLOAT[]") {
      const found = [...types].map(([k, v]) => `${k} ${v}`).join(", ");
      throw new CorruptArtifactError(`${file}: wrong schema (${found}); expected id INTEGER, features FLOAT[]`);
    }
    const stats = (
      await conn.runAndReadAll(
        `SELECT count(*), count(*) FILTER (WHERE id IS NULL OR features IS NULL OR list_count(features) <> len(features)), min(len(features)), max(len(features)), count(DISTINCT id) FROM ${src}`,
      )
    )
      .getRows()[0]
      .map((v) => (v === null ? null : Number(v)));
    const [rows, bad, minLen, maxLen, distinct] = stats as [number, number, number | null, number | null, number];
    if (bad > 0) throw new CorruptArtifactError(`${file}: ${bad} rows with a null id, null features or null elements`);
    if (distinct !== rows) throw new CorruptArtifactError(`${file}: ids are not unique (${rows} rows, ${distinct} distinct ids)`);
    if (rows > 0 && (minLen !== maxLen || !minLen)) {
      throw new CorruptArtifactError(`${file}: feature vectors have lengths ${minLen}..${maxLen}; they must all equal the rank (>= 1)`);
    }
    const rank = rows > 0 ? (minLen as number) : 0;
    const ids = new Int32Array(rows);
    const factors = new Float32Array(rows * rank);
    const result = await conn.stream(`SELECT id, features FROM ${src} ORDER BY id`);
    let offset = 0;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const n = chunk.rowCount;
      if (offset + n > rows) throw new CorruptArtifactError(`${file}: more rows than its metadata says`);
      ids.set(vectorItems<Int32Array>(chunk.getColumnVector(0)), offset);
      const list = chunk.getColumnVector(1);
      if (!isListVector(list)) throw new CorruptArtifactError(`${file}: the features column is not a list`);
      const child = vectorItems<Float32Array>(list.childVector);
      for (let r = 0; r < n; r++) {
        const start = list.getEntryOffset(r);
        factors.set(child.subarray(start, start + rank), (offset + r) * rank);
      }
      offset += n;
    }
    if (offset !== rows) throw new CorruptArtifactError(`${file}: read ${offset} rows, expected ${rows}`);
    refuseNonFiniteFactors(file, ids, factors, rank);
    return { rank, ids, factors };
  });
}

/** A NaN or infinite factor is bad data for every consumer: name the file, the row's id and the feature. */
function refuseNonFiniteFactors(file: string, ids: Int32Array, factors: Float32Array, rank: number): void {
  for (let i = 0; i < factors.length; i++) {
    const v = factors[i];
    if (v - v === 0) continue;
    let bad = 0;
    for (let j = i; j < factors.length; j++) if (factors[j] - factors[j] !== 0) bad++;
    const row = Math.floor(i / rank);
    throw new BadInputError(
      `id ${ids[row]}: features[${i - row * rank}] is ${v} (${bad} non-finite values in all); factors must be finite numbers`,
      { file },
    );
  }
}

/** Structural, so that this module loads DuckDB only when it reads (the import below is a type). */
function isListVector(vector: DuckDBVector): vector is DuckDBListVector {
  return "getEntryOffset" in vector && "childVector" in vector;
}

/**
 * Loads a factors artifact directory and checks it against its manifest's rank and counts. With
 * `{ arrow: true }` the result also holds both tables as Apache Arrow tables over the same
 * typed arrays (zero-copy; see arrow.ts).
 */
export async function readFactors(dir: string): Promise<Factors>;
export async function readFactors(dir: string, options: { arrow: true }): Promise<Factors & { arrow: FactorsArrow }>;
export async function readFactors(dir: string, options?: { arrow?: boolean }): Promise<Factors | (Factors & { arrow: FactorsArrow })>;
export async function readFactors(dir: string, options: { arrow?: boolean } = {}): Promise<Factors | (Factors & { arrow: FactorsArrow })> {
  const abs = path.resolve(dir);
  const manifest = await readManifest(abs, "factors", { params: Fields, metrics: Fields, details: FactorsDetailsSchema });
  const details = manifest.details;
  const usersFile = path.join(abs, FACTORS_FILES.users);
  const itemsFile = path.join(abs, FACTORS_FILES.items);
  const users = await readFactorFile(usersFile);
  const items = await readFactorFile(itemsFile);
  for (const [file, table, count] of [
    [usersFile, users, details.users],
    [itemsFile, items, details.items],
  ] as const) {
    if (table.ids.length > 0 && table.rank !== details.rank) {
      throw new CorruptArtifactError(`${file}: rank ${table.rank} does not match the manifest's rank ${details.rank}`);
    }
    if (table.ids.length !== count) throw new CorruptArtifactError(`${file}: ${table.ids.length} rows, the manifest says ${count}`);
  }
  const factors: Factors = {
    rank: details.rank,
    userIds: users.ids,
    userFactors: users.factors,
    itemIds: items.ids,
    itemFactors: items.factors,
    details,
    manifest,
  };
  return options.arrow ? { ...factors, arrow: await factorsToArrow(factors) } : factors;
}

/** Ratings plus where they came from, for the manifest. */
export interface LoadedRatings extends RatingsColumns {
  file: string;
}

/**
 * Reads the ratings input (an etl output directory or its Parquet file) and refuses ratings the
 * maths cannot use: no rows or non-finite values (a NaN in a hand-made Parquet file).
 */
export async function loadRatings(pathOrDir: string): Promise<LoadedRatings> {
  const { file } = await resolveRatingsFile(pathOrDir);
  const columns = await readRatingsColumns(pathOrDir);
  if (columns.rows === 0) throw new BadInputError("no ratings rows", { file });
  const r = columns.ratings;
  for (let i = 0; i < r.length; i++) {
    if (!Number.isFinite(r[i])) {
      throw new BadInputError(
        `row ${i + 1}: rating is ${r[i]} (userId ${columns.userIds[i]}, movieId ${columns.movieIds[i]}); ratings must be finite numbers`,
        { file },
      );
    }
  }
  return { ...columns, file };
}
