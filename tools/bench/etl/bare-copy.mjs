/**
 * The baseline: a bare DuckDB COPY of a ratings CSV to zstd Parquet, nothing else (no validation,
 * no manifest, no digest), in its own Node process so that both sides pay for a process start.
 */
import { DuckDBInstance } from "@duckdb/node-api";

const [csv, out] = process.argv.slice(2);
const q = (s) => `'${s.replaceAll("'", "''")}'`;
const conn = await (await DuckDBInstance.create(":memory:")).connect();
await conn.run(
  `COPY (SELECT userId, movieId, rating FROM read_csv(${q(csv)}, header=true, columns={'userId':'INTEGER','movieId':'INTEGER','rating':'FLOAT','timestamp':'BIGINT'})) TO ${q(out)} (FORMAT parquet, COMPRESSION zstd)`,
);
