/**
 * The Parquet -> typed columns reader, checked value by value against plain SQL, and its refusal
 * of files that are not ratings.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BadInputError, CorruptArtifactError, MissingArtifactError } from "@ms/contracts";
import { readRatingsColumns } from "./adapter.js";
import { ratingsTable } from "./arrow.js";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { writeSyntheticRatings } from "./synthetic.js";
import { queryRows, tempDir } from "./__tests__/helpers.js";

describe("readRatingsColumns", () => {
  it("matches the Parquet content across several DuckDB chunks", async () => {
    const dir = await tempDir();
    const csv = path.join(dir, "ratings.csv");
    writeSyntheticRatings(csv, { rows: 10_000, seed: 7 });
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), path.join(dir, "out"));
    const cols = await readRatingsColumns(path.join(dir, "out"));
    const rows = await queryRows(`SELECT userId, movieId, rating FROM read_parquet('${path.join(dir, "out", "ratings.parquet")}')`);
    expect(cols.rows).toBe(10_000);
    expect(cols.userIds).toBeInstanceOf(Int32Array);
    expect(cols.ratings).toBeInstanceOf(Float32Array);
    expect(Array.from(cols.userIds)).toEqual(rows.map((r) => r[0]));
    expect(Array.from(cols.movieIds)).toEqual(rows.map((r) => r[1]));
    expect(Array.from(cols.ratings)).toEqual(rows.map((r) => r[2]));
    // The file itself works as well as its directory.
    const direct = await readRatingsColumns(path.join(dir, "out", "ratings.parquet"));
    expect(direct.movieIds).toEqual(cols.movieIds);
  });

  it("offers the columns as an Arrow table over the same memory", async () => {
    const dir = await tempDir();
    const csv = path.join(dir, "ratings.csv");
    writeSyntheticRatings(csv, { rows: 5_000, seed: 11 });
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), path.join(dir, "out"));
    const cols = await readRatingsColumns(path.join(dir, "out"));
    const table = await ratingsTable(cols);
    expect(table.numRows).toBe(5_000);
    expect(table.schema.fields.map((f) => `${f.name}:${String(f.type)}:${f.nullable}`)).toEqual([
      "userId:Int32:false",
      "movieId:Int32:false",
      "rating:Float32:false",
    ]);
    for (const [name, array] of [
      ["userId", cols.userIds],
      ["movieId", cols.movieIds],
      ["rating", cols.ratings],
    ] as const) {
      const data = table.getChild(name)!.data;
      expect(data).toHaveLength(1);
      // Zero-copy: the column's value buffer is the typed array's own memory.
      expect(data[0].values.buffer).toBe(array.buffer);
      expect(data[0].values.byteOffset).toBe(array.byteOffset);
      expect(data[0].nullCount).toBe(0);
    }
    cols.ratings[42] = 0.5;
    expect(table.getChild("rating")!.get(42)).toBe(0.5);
    expect(table.get(7)!.toJSON()).toEqual({ userId: cols.userIds[7], movieId: cols.movieIds[7], rating: cols.ratings[7] });
    await expect(ratingsTable({ ...cols, rows: 4_999 })).rejects.toThrow(/must each hold 4999 values/);
  });

  it("rejects a file that is not Parquet, a wrong schema, and a missing path", async () => {
    const dir = await tempDir();
    const junk = path.join(dir, "junk.parquet");
    await writeFile(junk, "userId,movieId\n1,2\n");
    await expect(readRatingsColumns(junk)).rejects.toThrow(BadInputError);
    await expect(readRatingsColumns(junk)).rejects.toThrow(/junk\.parquet: not a readable Parquet file/);
    const wrong = path.join(dir, "wrong.parquet");
    await queryRows(`COPY (SELECT 1::BIGINT AS userId, 2 AS movieId, 3.0::FLOAT AS rating) TO '${wrong}' (FORMAT parquet)`);
    await expect(readRatingsColumns(wrong)).rejects.toThrow(/wrong\.parquet: wrong schema: column userId must be INTEGER, found BIGINT/);
    const nulls = path.join(dir, "nulls.parquet");
    await queryRows(
      `COPY (SELECT * FROM (VALUES (1, 2, 3.0::FLOAT), (NULL, 2, 1.0::FLOAT)) t(userId, movieId, rating)) TO '${nulls}' (FORMAT parquet)`,
    );
    await expect(readRatingsColumns(nulls)).rejects.toThrow(/null values/);
    await expect(readRatingsColumns(path.join(dir, "missing"))).rejects.toThrow(MissingArtifactError);
    await expect(readRatingsColumns(dir)).rejects.toThrow(MissingArtifactError);
    expect(CorruptArtifactError).toBeDefined();
  });
});
