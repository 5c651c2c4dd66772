/**
 * pyarrow reads our ratings Parquet and factor files with the expected Arrow schema, and every
 * value equals what our own readers return, bit for bit.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { FACTORS_FILES, readFactors } from "@ms/als";
import { readRatingsColumns } from "@ms/etl";
import { firstDifference } from "./compare.js";
import { buildArtifacts, type Artifacts } from "./fixtures.js";
import { runPython } from "./python.js";

interface PyFile {
  path: string;
  rows: number;
  fields: { name: string; type: string; nullable: boolean }[];
}

let artifacts: Artifacts;
let dump: string;
let files: PyFile[];

beforeAll(async () => {
  artifacts = await buildArtifacts();
  dump = path.join(artifacts.root, "pyarrow");
  await mkdir(dump);
  files = await runPython<PyFile[]>(inject("pythonVenv"), "read_pyarrow.py", [
    dump,
    artifacts.ratingsFile,
    path.join(artifacts.factorsDir, FACTORS_FILES.users),
    path.join(artifacts.factorsDir, FACTORS_FILES.items),
  ]);
});

afterAll(async () => {
  if (artifacts) await rm(artifacts.root, { recursive: true, force: true });
});

const bin = (file: number, column: string) => path.join(dump, `${file}-${column}.bin`);

describe("pyarrow", () => {
  it("reads the ratings with schema userId int32, movieId int32, rating float32 and our values", async () => {
    const cols = await readRatingsColumns(artifacts.ratingsDir);
    expect(files[0].fields.map((f) => [f.name, f.type])).toEqual([
      ["userId", "int32"],
      ["movieId", "int32"],
      ["rating", "float"],
    ]);
    expect(files[0].rows).toBe(cols.rows);
    expect(firstDifference(cols.userIds, bin(0, "userId"))).toBe(-1);
    expect(firstDifference(cols.movieIds, bin(0, "movieId"))).toBe(-1);
    expect(firstDifference(cols.ratings, bin(0, "rating"))).toBe(-1);
  });

  it("reads both factor files with Spark ALSModel's schema (id int32, features list<float>) and our factors", async () => {
    const factors = await readFactors(artifacts.factorsDir);
    for (const [index, ids, values] of [
      [1, factors.userIds, factors.userFactors],
      [2, factors.itemIds, factors.itemFactors],
    ] as const) {
      const types = files[index].fields.map((f) => [f.name, f.type]);
      expect(types[0]).toEqual(["id", "int32"]);
      expect(types[1][0]).toBe("features");
      expect(types[1][1]).toMatch(/^list<\w+: float>$/);
      expect(files[index].rows).toBe(ids.length);
      expect(firstDifference(ids, bin(index, "id"))).toBe(-1);
      expect(firstDifference(values, bin(index, "features"))).toBe(-1);
      const lengths = new Int32Array((await readFile(bin(index, "features.lengths"))).buffer.slice(0));
      expect(lengths.length).toBe(ids.length);
      expect(lengths.every((n) => n === factors.rank)).toBe(true);
    }
  });
});
