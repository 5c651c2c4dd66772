/**
 * The etl step on small generated files: formats, row limit, schema, dedupe, and every kind of
 * bad input, each of which must name the file and line and leave nothing behind.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BadInputError, BadParameterError, readManifest } from "@ms/contracts";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { listDir, parquetSchema, queryRows, SMALL_CSV, tempDir, writeText } from "./__tests__/helpers.js";

describe("etl", () => {
  it("converts a MovieLens CSV to zstd Parquet with the contract schema", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", SMALL_CSV);
    const out = path.join(dir, "out");
    const result = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), out);
    const file = path.join(out, "ratings.parquet");
    // The file has timestamps, so etl_keep_timestamp=auto keeps them (the fm step's time features read them); false drops them.
    expect(await parquetSchema(file)).toEqual({ userId: "INT32", movieId: "INT32", rating: "FLOAT", timestamp: "INT64" });
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, etl_keep_timestamp: "false" }), path.join(dir, "dropped"));
    expect(await parquetSchema(path.join(dir, "dropped", "ratings.parquet"))).toEqual({
      userId: "INT32",
      movieId: "INT32",
      rating: "FLOAT",
    });
    const rows = await queryRows(`SELECT userId, movieId, rating FROM read_parquet('${file}')`);
    expect(rows).toEqual([
      [1, 10, 4],
      [1, 20, 3.5],
      [2, 10, 5],
      [2, 30, 0.5],
      [3, 20, 2.5],
    ]);
    const codecs = await queryRows(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
    expect(codecs).toEqual([["ZSTD"]]);
    expect(result.metrics.rows).toBe(5);
    const manifest = await readManifest(out, "ratings");
    expect(manifest.digest).toBe(result.outputs.ratings.digest);
    expect(manifest.files.map((f) => f.path)).toEqual(["ratings.parquet"]);
    expect(manifest.details).toMatchObject({ rows: 5, source: { format: "csv" } });
    expect((manifest.details as { source: { digest: string } }).source.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await listDir(out)).toEqual(["manifest.json", "ratings.parquet"]);
  });

  it("keeps the first N rows in file order and gives the same digest every time", async () => {
    const dir = await tempDir();
    const lines = ["userId,movieId,rating,timestamp"];
    for (let i = 0; i < 500; i++) lines.push(`${((i * 7919) % 97) + 1},${i + 1},${((i % 10) + 1) / 2},${1000 + i}`);
    const csv = await writeText(dir, "ratings.csv", lines.join("\n") + "\n");
    const a = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: 100 }), path.join(dir, "a"));
    const b = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: 100 }), path.join(dir, "b"));
    const all = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), path.join(dir, "all"));
    expect(a.outputs.ratings.digest).toBe(b.outputs.ratings.digest);
    expect(all.outputs.ratings.digest).not.toBe(a.outputs.ratings.digest);
    expect(all.metrics.rows).toBe(500);
    const movies = await queryRows(`SELECT movieId FROM read_parquet('${path.join(dir, "a", "ratings.parquet")}')`);
    expect(movies.map((r) => r[0])).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("reads ml-1m ratings.dat, ml-100k u.data and CRLF files", async () => {
    const dir = await tempDir();
    const dat = await writeText(dir, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n");
    const tsv = await writeText(dir, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n");
    const crlf = await writeText(dir, "crlf.csv", SMALL_CSV.replaceAll("\n", "\r\n"));
    const r1 = await etl({ ratingsCsv: dat }, resolveEtlParams({}), path.join(dir, "dat"));
    const r2 = await etl({ ratingsCsv: tsv }, resolveEtlParams({}), path.join(dir, "tsv"));
    const r3 = await etl({ ratingsCsv: crlf }, resolveEtlParams({}), path.join(dir, "crlf"));
    expect([r1.metrics.rows, r2.metrics.rows, r3.metrics.rows]).toEqual([3, 2, 5]);
    expect(r1.manifest.details.source.format).toBe("dat");
    expect(r2.manifest.details.source.format).toBe("tsv");
    expect(await queryRows(`SELECT * FROM read_parquet('${path.join(dir, "tsv", "ratings.parquet")}')`)).toEqual([
      [196, 242, 3, 881250949],
      [186, 302, 3, 891717742],
    ]);
  });

  it("keeps the timestamp on request and dedupes to the latest rating", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,2.0,100\n1,1,4.0,300\n2,1,3.0,50\n1,1,1.0,200\n");
    const kept = await etl(
      { ratingsCsv: csv },
      resolveEtlParams({ etl_keep_timestamp: "true", etl_dedupe: "latest" }),
      path.join(dir, "out"),
    );
    expect(kept.metrics).toMatchObject({ rows: 2, rows_read: 4, duplicates_dropped: 2 });
    const file = path.join(dir, "out", "ratings.parquet");
    expect(await parquetSchema(file)).toEqual({ userId: "INT32", movieId: "INT32", rating: "FLOAT", timestamp: "INT64" });
    expect(await queryRows(`SELECT * FROM read_parquet('${file}')`)).toEqual([
      [1, 1, 4, 300],
      [2, 1, 3, 50],
    ]);
  });

  it("handles paths with quotes and spaces", async () => {
    const dir = await tempDir();
    const odd = path.join(dir, 'it\'s a "dir"');
    await mkdir(odd);
    const csv = await writeText(odd, "my ratings.csv", SMALL_CSV);
    const result = await etl({ ratingsCsv: csv }, resolveEtlParams({}), path.join(odd, "out put"));
    expect(result.metrics.rows).toBe(5);
  });

  it("replaces its own earlier output but refuses to overwrite other files", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", SMALL_CSV);
    const out = path.join(dir, "out");
    await etl({ ratingsCsv: csv }, resolveEtlParams({}), out);
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: 2 }), out);
    expect((await readManifest(out)).details).toMatchObject({ rows: 2 });
    const precious = path.join(dir, "precious");
    await mkdir(precious);
    await writeFile(path.join(precious, "thesis.txt"), "keep me");
    await expect(etl({ ratingsCsv: csv }, resolveEtlParams({}), precious)).rejects.toThrow(BadParameterError);
    expect(await readFile(path.join(precious, "thesis.txt"), "utf8")).toBe("keep me");
  });

  it("rejects bad parameters by name", () => {
    expect(() => resolveEtlParams({ max_row_limit: 0 })).toThrow(/max_row_limit/);
    expect(() => resolveEtlParams({ max_row_limit: -5 })).toThrow(/max_row_limit/);
  });

  const header = "userId,movieId,rating,timestamp\n";
  const bad: [string, string, RegExp, number | undefined][] = [
    ["empty file", "", /empty file/, 1],
    ["header only", header, /header only/, undefined],
    ["wrong delimiter", "userId;movieId;rating;timestamp\n1;2;3;4\n", /wrong delimiter/, 1],
    ["missing column", "userId,movieId,timestamp\n1,2,3\n", /header has no rating column .*etl_columns=rating=NAME/, 1],
    ["column named twice", "user,userId,movieId,rating\n1,1,2,3\n", /header names userId twice \(user, userId\)/, 1],
    ["no header", "1,2,3.0,4\n", /header has no userId column \(found "1,2,3.0,4"\)/, 1],
    ["extra field in a row", `${header}1,2,3.0,4\n1,3,3.0,4,9\n`, /columns/i, 3],
    ["missing field in a row", `${header}1,2,3.0,4\n1,3,3.0\n`, /columns/i, 3],
    ["missing value", `${header}1,2,3.0,4\n1,,3.0,4\n`, /missing value/, 3],
    ["non-numeric", `${header}1,2,3.0,4\n1,3,abc,4\n2,2,1.0,5\n`, /rating value "abc" is not a number/, 3],
    ["NaN rating", `${header}1,2,3.0,4\n1,3,NaN,4\n`, /outside \[0\.5, 5\]/, 3],
    ["infinite rating", `${header}1,2,3.0,4\n2,2,2.0,4\n1,3,inf,4\n`, /outside \[0\.5, 5\]/, 4],
    ["rating above 5", `${header}1,2,5.5,4\n`, /rating 5\.5 is outside/, 2],
    ["rating below 0.5", `${header}1,2,3,4\n1,3,0,4\n`, /rating 0 is outside/, 3],
    ["id beyond INT32", `${header}1,2,3,4\n3000000000,3,3,4\n`, /userId value "?3000000000"? is not an integer that fits INT32/, 3],
    ["fractional id", `${header}1.5,2,3,4\n`, /userId value "1.5" is not an id \(decimal digits only/, 2],
    // DuckDB reads these as whole numbers; contracts' parseId (decimal digits only) does not.
    ["id with a zero fraction", `${header}1,2,3,4\n1.0,2,3,4\n`, /userId value "1.0" is not an id/, 3],
    ["id with an exponent", `${header}1,2,3,4\n1,9.9e1,3,4\n`, /movieId value "9.9e1" is not an id/, 3],
    ["id with a plus sign", `${header}1,2,3,4\n+1,2,3,4\n`, /userId value "\+1" is not an id/, 3],
    ["LF, then CR LF", `${header}1,2,3,4\n1,3,3,4\r\n2,2,2,2\n`, /mixed line endings/, 3],
    ["CR LF, then LF", `${header.replace("\n", "\r\n")}1,2,3,4\r\n2,2,2,2\n1,3,3,4\r\n`, /mixed line endings/, 3],
    ["missing timestamp", `${header}1,2,3,\n`, /missing value for timestamp/, 2],
    ["non-numeric id", `${header}1,2,3,4\nx,2,3,4\n`, /userId value "x" is not an id/, 3],
    ["non-numeric timestamp", `${header}1,2,3,4\n1,3,3,yesterday\n`, /timestamp value "yesterday" is not a number/, 3],
    // DuckDB reads "1_000" as 1000 in every numeric type; MovieLens files never hold a '_'.
    ["digit separator in an id", `${header}1,2,3,4\n1_000,3,3,4\n`, /userId value "1_000" is not a plain number/, 3],
    ["digit separator in a rating", `${header}1,2,3,4\n1,3,0_5,4\n`, /rating value "0_5" is not a plain number/, 3],
    ["fractional timestamp", `${header}1,2,3,4\n1,3,3,9.7\n`, /timestamp value 9\.7 is not a whole number/, 3],
    ["hexadecimal timestamp", `${header}1,2,3,4\n1,3,3,0x1F\n`, /timestamp value "0x1F" is not a number/, 3],
    ["infinite timestamp", `${header}1,2,3,4\n1,3,3,inf\n`, /timestamp value Infinity is not a whole number/, 3],
    ["over-long line", `${header}1,2,3,4\n1,3,3,${"9".repeat(100_000)}\n2,2,2,2\n`, /line is longer than 65536 bytes/, 3],
    ["over-long first line", `userId,movieId,rating,timestamp${" ".repeat(100_000)}\n1,2,3,4\n`, /line is longer than 65536 bytes/, 1],
  ];
  it.each(bad)("rejects %s with file and line, leaving nothing behind", async (_name, text, pattern, line) => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", text);
    const out = path.join(dir, "out");
    const error = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), out).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as BadInputError).message).toMatch(pattern);
    expect((error as BadInputError).file).toBe(csv);
    expect((error as BadInputError).line).toBe(line);
    expect((error as Error).message.startsWith(`${csv}${line !== undefined ? `:${line}` : ""}: `)).toBe(true);
    expect(existsSync(out)).toBe(false);
    expect(await listDir(dir)).toEqual(["ratings.csv"]);
  });

  it("finds fractional ids and empty timestamps in every format, and only within the row limit", async () => {
    const dir = await tempDir();
    const dat = await writeText(dir, "ratings.dat", "1::10::5::978300760\n1::10.25::3::978302109\n");
    await expect(etl({ ratingsCsv: dat }, resolveEtlParams({}), path.join(dir, "a"))).rejects.toThrow(
      /ratings\.dat:2: movieId value "10\.25" is not an id/,
    );
    const crlf = await writeText(dir, "crlf.csv", "userId,movieId,rating,timestamp\r\n1,2,3,4\r\n1,3,3,\r\n");
    await expect(etl({ ratingsCsv: crlf }, resolveEtlParams({}), path.join(dir, "b"))).rejects.toThrow(
      /crlf\.csv:3: missing value for timestamp/,
    );
    const noNewline = await writeText(dir, "last.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,3,3,");
    await expect(etl({ ratingsCsv: noNewline }, resolveEtlParams({}), path.join(dir, "c"))).rejects.toThrow(
      /last\.csv:3: missing value for timestamp/,
    );
    const late = await writeText(dir, "late.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,3,3,5\n1.5,3,3,5\n");
    expect((await etl({ ratingsCsv: late }, resolveEtlParams({ max_row_limit: 2 }), path.join(dir, "d"))).metrics.rows).toBe(2);
    await expect(etl({ ratingsCsv: late }, resolveEtlParams({ max_row_limit: 3 }), path.join(dir, "e"))).rejects.toThrow(
      /late\.csv:4: userId value "1\.5"/,
    );
    const whole = await writeText(dir, "whole.csv", "userId,movieId,rating,timestamp\n1,2.00,3,4\n");
    await expect(etl({ ratingsCsv: whole }, resolveEtlParams({}), path.join(dir, "f"))).rejects.toThrow(
      /whole\.csv:2: movieId value "2\.00" is not an id/,
    );
  });

  it("takes the common header spellings in any case, a mapping for the rest, and no timestamp unless needed", async () => {
    const dir = await tempDir();
    const rows = async (out: string) => queryRows(`SELECT * FROM read_parquet('${path.join(dir, out, "ratings.parquet")}')`);
    const spelled = await writeText(dir, "a.csv", "USER_ID,Item_Id,rating\n1,10,4.0\n2,20,3.5\n");
    await etl({ ratingsCsv: spelled }, resolveEtlParams({}), path.join(dir, "a"));
    expect(await rows("a")).toEqual([
      [1, 10, 4],
      [2, 20, 3.5],
    ]);
    // Columns in another order, and one etl does not know, which it drops.
    const moved = await writeText(dir, "b.csv", "rating,title,movie,user,timestamp\n4.0,x,10,1,100\n");
    await etl({ ratingsCsv: moved }, resolveEtlParams({ etl_keep_timestamp: "true" }), path.join(dir, "b"));
    expect(await rows("b")).toEqual([[1, 10, 4, 100]]);
    const own = await writeText(dir, "c.csv", "uid,iid,stars\n1,10,4.0\n1.0,20,3.5\n");
    const mapping = resolveEtlParams({ etl_columns: "userId=uid,movieId=iid,rating=stars" });
    await expect(etl({ ratingsCsv: own }, mapping, path.join(dir, "c"))).rejects.toThrow(/c\.csv:3: userId value "1\.0" is not an id/);
    await writeFile(own, "uid,iid,stars\n1,10,4.0\n");
    await etl({ ratingsCsv: own }, mapping, path.join(dir, "c"));
    expect(await rows("c")).toEqual([[1, 10, 4]]);
    await expect(etl({ ratingsCsv: own }, resolveEtlParams({}), path.join(dir, "d"))).rejects.toThrow(
      /c\.csv:1: header has no userId column .*-P etl_columns=userId=NAME/,
    );
    await expect(
      etl({ ratingsCsv: own }, resolveEtlParams({ etl_columns: "userId=uid,movieId=iid,rating=score" }), path.join(dir, "d")),
    ).rejects.toThrow(/c\.csv:1: etl_columns maps rating to "score", which the header does not name once/);
    // The timestamp is needed to keep it or to find the latest rating.
    await expect(etl({ ratingsCsv: spelled }, resolveEtlParams({ etl_keep_timestamp: "true" }), path.join(dir, "d"))).rejects.toThrow(
      new BadInputError("has no timestamp column, which -P etl_keep_timestamp=true needs (name it with -P etl_columns=timestamp=NAME)", {
        file: spelled,
        line: 1,
      }),
    );
    await expect(etl({ ratingsCsv: spelled }, resolveEtlParams({ etl_dedupe: "latest" }), path.join(dir, "d"))).rejects.toThrow(
      /etl_dedupe=latest needs/,
    );
    expect(existsSync(path.join(dir, "d"))).toBe(false);
    for (const text of ["userId", "userId=", "who=uid", "userId=a,user=b"]) {
      expect(() => resolveEtlParams({ etl_columns: text }), text).toThrow(BadParameterError);
    }
  });

  it("names a missing input file", async () => {
    const dir = await tempDir();
    await expect(etl({ ratingsCsv: path.join(dir, "nope.csv") }, resolveEtlParams({}), path.join(dir, "out"))).rejects.toThrow(
      /nope\.csv: no such file/,
    );
  });
});

describe("etl inputs that are not what they seem", () => {
  it("refuses a fractional timestamp with --dedupe latest rather than keep the older row", async () => {
    const dir = await tempDir();
    // Read as BIGINT, 9.7 became 10 and beat the newer row at 9.
    const csv = await writeText(dir, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,2.0,9.7\n1,1,4.0,9\n");
    const error = await etl(
      { ratingsCsv: csv },
      resolveEtlParams({ etl_dedupe: "latest", etl_keep_timestamp: "true" }),
      path.join(dir, "out"),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toBe(`${csv}:2: timestamp value 9.7 is not a whole number of seconds (within ±2^53)`);
    // Whole timestamps written with a fraction of zero are still whole.
    const whole = await writeText(dir, "whole.csv", "userId,movieId,rating,timestamp\n1,1,2.0,9.0\n1,1,4.0,10\n");
    const kept = await etl(
      { ratingsCsv: whole },
      resolveEtlParams({ etl_dedupe: "latest", etl_keep_timestamp: "true" }),
      path.join(dir, "ok"),
    );
    expect(await queryRows(`SELECT * FROM read_parquet('${path.join(dir, "ok", "ratings.parquet")}')`)).toEqual([[1, 1, 4, 10]]);
    expect(kept.metrics.rows).toBe(1);
  });

  it("refuses a directory and a FIFO as the ratings file without opening them", async () => {
    const dir = await tempDir();
    const sub = path.join(dir, "ratings.csv");
    await mkdir(sub);
    await expect(etl({ ratingsCsv: sub }, resolveEtlParams({}), path.join(dir, "out"))).rejects.toThrow(
      new BadInputError("is a directory, expected a ratings file", { file: sub }),
    );
    const fifo = path.join(dir, "pipe.csv");
    execFileSync("mkfifo", [fifo]);
    // No writer ever opens it: a plain open() would wait forever.
    const error = await etl({ ratingsCsv: fifo }, resolveEtlParams({}), path.join(dir, "out")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toBe(`${fifo}: is a named pipe (FIFO), expected a regular ratings file`);
    expect(await listDir(dir)).toEqual(["pipe.csv", "ratings.csv"]);
  });

  it("removes staging directories that dead processes left beside the output, and nothing else", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", SMALL_CSV);
    const dead = deadPid();
    const leftovers = [`.out.tmp-${dead}-0123abcd`, `.out.old-${dead}-89abcdef`, `.other.tmp-${dead}-deadbeef`];
    for (const name of leftovers) {
      await mkdir(path.join(dir, name));
      await writeFile(path.join(dir, name, "ratings.parquet"), "half written");
    }
    const live = `.out.tmp-${process.pid}-feedf00d`;
    await mkdir(path.join(dir, live));
    await writeFile(path.join(dir, `.out.tmp-${dead}-00000000`), "a file, not ours");
    await etl({ ratingsCsv: csv }, resolveEtlParams({}), path.join(dir, "out"));
    expect(await listDir(dir)).toEqual([`.out.tmp-${dead}-00000000`, live, "out", "ratings.csv"].sort());
  });
});

/** The pid of a process that has exited (and, on a quiet machine, not been reused). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}
