/**
 * Test helpers: temporary directories and a second, independent look at Parquet files through a
 * fresh DuckDB connection (plain SQL, not the reader under test).
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach } from "vitest";

const made: string[] = [];

export async function tempDir(prefix = "ms-etl-"): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

export async function writeText(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

export async function queryRows(sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    const rows = (await conn.runAndReadAll(sql)).getRows();
    return rows.map((r) => r.map((v) => (typeof v === "bigint" ? Number(v) : v)));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

export async function parquetSchema(file: string): Promise<Record<string, string>> {
  const rows = await queryRows(`SELECT name, type FROM parquet_schema('${file.replaceAll("'", "''")}') WHERE num_children IS NULL`);
  return Object.fromEntries(rows.map(([n, t]) => [String(n), String(t)]));
}

/** Everything in `dir`, so a test can assert that a failure left nothing behind. */
export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export const SMALL_CSV =
  [
    "userId,movieId,rating,timestamp",
    "1,10,4.0,964982703",
    "1,20,3.5,964981247",
    "2,10,5.0,964982224",
    "2,30,0.5,964983815",
    "3,20,2.5,964982931",
  ].join("\n") + "\n";

export const ML_SMALL = process.env.MS_MOVIELENS_SMALL ?? path.resolve(__dirname, "../../../../../shared/movielens/ml-latest-small");
