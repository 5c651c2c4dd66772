/**
 * etl's keyed splits: split=time writes each user's rank by time as `split_key` (the same values
 * as @ms/contracts' `timeSplitKey`), split=file appends the test file's rows with split_key 1, read
 * with the same checks as the main file; a pair in both files is refused, naming the test line.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BadInputError, BadParameterError, splitMaskOf, timeSplitKey } from "@ms/contracts";
import { readRatingsColumns } from "./adapter.js";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { parquetSchema, queryRows, tempDir, writeText } from "./__tests__/helpers.js";

function ratingsCsv(rows: number, seed: number): string {
  const lines = ["userId,movieId,rating,timestamp"];
  let x = seed;
  for (let i = 0; i < rows; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    // Few distinct timestamps per user, so ties (broken by movieId) happen.
    lines.push(`${(x % 13) + 1},${i + 1},${((x >> 8) % 10) / 2 + 0.5},${1000 + ((x >> 4) % 5)}`);
  }
  return lines.join("\n") + "\n";
}

describe("etl split=time", () => {
  it("writes split_key = the rank of each rating by time within its user, keeping timestamps", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", ratingsCsv(400, 7));
    const out = path.join(dir, "out");
    const result = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, split: "time" }), out);
    const file = path.join(out, "ratings.parquet");
    expect(await parquetSchema(file)).toEqual({
      userId: "INT32",
      movieId: "INT32",
      rating: "FLOAT",
      timestamp: "INT64",
      split_key: "FLOAT",
    });
    const rows = await queryRows(`SELECT userId, movieId, timestamp FROM read_parquet('${file}')`);
    const cols = await readRatingsColumns(out);
    const expected = timeSplitKey(
      cols.userIds,
      cols.movieIds,
      rows.map((r) => Number(r[2])),
    );
    expect(cols.splitKey).toEqual(expected);
    // Row order is the file's: the key column is the only change.
    expect(rows.map((r) => Number(r[1]))).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    const mask = splitMaskOf({ kind: "time", seed: 0, splitProp: 0.8 }, cols);
    const test = mask.reduce((n, m) => n + (m === 0 ? 1 : 0), 0);
    expect(Math.abs(test / 400 - 0.2)).toBeLessThan(0.03);
    expect(result.manifest.details.schema.map((c) => c.name)).toEqual(["userId", "movieId", "rating", "timestamp", "split_key"]);
    const again = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, split: "time" }), path.join(dir, "again"));
    expect(again.outputs.ratings.digest).toBe(result.outputs.ratings.digest);
  });

  it("needs a timestamp column, naming split=time", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", "userId,movieId,rating\n1,10,4\n");
    await expect(etl({ ratingsCsv: csv }, resolveEtlParams({ split: "time" }), path.join(dir, "out"))).rejects.toThrow(/split=time/);
  });

  it("writes no split_key for hash or kfold", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", ratingsCsv(50, 3));
    await etl({ ratingsCsv: csv }, resolveEtlParams({ split: "kfold" }), path.join(dir, "out"));
    expect((await readRatingsColumns(path.join(dir, "out"))).splitKey).toBeUndefined();
  });
});

describe("etl split=file", () => {
  it("appends the test file's rows with split_key 1 (any format), main rows 0", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "u1.base.csv", "userId,movieId,rating,timestamp\n1,10,4,5\n1,20,3,6\n2,10,5,7\n");
    const test = await writeText(dir, "u1.test", "1\t30\t2\t8\n9\t10\t4\t9\n");
    const out = path.join(dir, "out");
    const params = resolveEtlParams({ max_row_limit: -1, split: "file", test_ratings: test });
    const result = await etl({ ratingsCsv: csv, testRatings: test }, params, out);
    const cols = await readRatingsColumns(out);
    expect([...cols.userIds]).toEqual([1, 1, 2, 1, 9]);
    expect([...cols.movieIds]).toEqual([10, 20, 10, 30, 10]);
    expect([...(cols.splitKey ?? [])]).toEqual([0, 0, 0, 1, 1]);
    expect(result.metrics).toMatchObject({ rows: 5, test_file_rows: 2 });
    expect(result.manifest.details.test).toMatchObject({ path: test, format: "tsv", rows: 2 });
    expect([...splitMaskOf({ kind: "file", seed: 42, splitProp: 0.8 }, cols)]).toEqual([1, 1, 1, 0, 0]);
  });

  it("refuses a bad test file naming it and its line, and a pair in both files naming the test line; leaves nothing", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "base.csv", "userId,movieId,rating,timestamp\n1,10,4,5\n1,20,3,6\n");
    const bad = await writeText(dir, "bad.csv", "userId,movieId,rating,timestamp\n2,10,4,5\n2,20,9,6\n");
    const both = await writeText(dir, "both.csv", "userId,movieId,rating,timestamp\n3,10,4,5\n1,20,2,6\n");
    for (const [test, line, text] of [
      [bad, 3, /outside \[0.5, 5\]/],
      [both, 3, /also a rating of the main ratings file/],
    ] as const) {
      const out = path.join(dir, `out-${line}-${path.basename(test)}`);
      const error = await etl({ ratingsCsv: csv, testRatings: test }, resolveEtlParams({ split: "file", test_ratings: test }), out).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BadInputError);
      expect((error as BadInputError).message).toMatch(text);
      expect((error as BadInputError).message).toContain(`${test}:${line}`);
      expect(existsSync(out)).toBe(false);
    }
  });

  it("joins files without timestamps, keeping none", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "base.csv", "userId,movieId,rating\n1,10,4\n2,20,3\n");
    const test = await writeText(dir, "test.csv", "userId,movieId,rating,timestamp\n1,20,2,9\n");
    const out = path.join(dir, "out");
    await etl({ ratingsCsv: csv, testRatings: test }, resolveEtlParams({ split: "file", test_ratings: test }), out);
    expect(await parquetSchema(path.join(out, "ratings.parquet"))).toEqual({
      userId: "INT32",
      movieId: "INT32",
      rating: "FLOAT",
      split_key: "FLOAT",
    });
    expect([...((await readRatingsColumns(out)).splitKey ?? [])]).toEqual([0, 0, 1]);
  });

  it("test_ratings and split=file go together", () => {
    expect(() => resolveEtlParams({ split: "file" })).toThrow(BadParameterError);
    expect(() => resolveEtlParams({ test_ratings: "/tmp/x.csv" })).toThrow(/split=file/);
  });
});
