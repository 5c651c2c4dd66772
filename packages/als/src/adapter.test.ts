/**
 * The factors artifact round trip and the checks `readFactors` makes on broken artifacts, with a
 * real DuckDB writing and reading real Parquet files.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import {
  BadInputError,
  CorruptArtifactError,
  exitCodeFor,
  InterruptedError,
  MissingArtifactError,
  readManifest,
  StorageError,
  type Digest,
} from "@ms/contracts";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFactorFile, readFactors, writeFactorsArtifact } from "./adapter.js";
import { predictionsTable } from "./arrow.js";
import { predictTable, predictWith } from "./predict.js";
import { FACTORS_FILES, type FactorsDetails, type FactorTables } from "./types.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-adapter-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function tables(rank: number, users: number, items: number): FactorTables {
  // Ids out of order, so the test sees the writer sort them.
  const userIds = Int32Array.from({ length: users }, (_, i) => (i * 7919) % 100_003);
  const itemIds = Int32Array.from({ length: items }, (_, i) => 5 + 3 * (items - i));
  const userFactors = Float32Array.from({ length: users * rank }, (_, i) => Math.sin(i) * 3);
  const itemFactors = Float32Array.from({ length: items * rank }, (_, i) => Math.cos(i * 1.3) / 7);
  return { rank, userIds, userFactors, itemIds, itemFactors };
}

function details(t: FactorTables): FactorsDetails {
  return {
    rank: t.rank,
    users: t.userIds.length,
    items: t.itemIds.length,
    seed: 42,
    splitProp: 0.8,
    coldStartStrategy: "drop",
    ratings: { digest: `sha256:${"0".repeat(64)}` as Digest, rows: 1 },
  };
}

/** Sorts (ids, rows) by id, the order the artifact promises. */
function sorted(ids: Int32Array, f: Float32Array, rank: number): { ids: Int32Array; f: Float32Array } {
  const order = Array.from(ids.keys()).sort((a, b) => ids[a] - ids[b]);
  const outIds = Int32Array.from(order, (i) => ids[i]);
  const out = new Float32Array(f.length);
  order.forEach((src, dst) => out.set(f.subarray(src * rank, src * rank + rank), dst * rank));
  return { ids: outIds, f: out };
}

async function sql(query: string): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    await conn.run(query);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe("factors artifact", () => {
  it("round-trips ids and float32 factors exactly, sorted by id, across chunk boundaries", async () => {
    const t = tables(5, 5000, 2100);
    const dir = path.join(root, "rt");
    const manifest = await writeFactorsArtifact(dir, { tables: t, details: details(t), params: { rank: 5 }, metrics: { x: 1 } });
    expect((await readdir(dir)).sort()).toEqual(["item_factors.parquet", "manifest.json", "user_factors.parquet"]);
    expect(manifest.kind).toBe("factors");
    const back = await readFactors(dir);
    const u = sorted(t.userIds, t.userFactors, 5);
    const i = sorted(t.itemIds, t.itemFactors, 5);
    expect(back.rank).toBe(5);
    expect(back.userIds).toEqual(u.ids);
    expect(back.userFactors).toEqual(u.f);
    expect(back.itemIds).toEqual(i.ids);
    expect(back.itemFactors).toEqual(i.f);
    expect(back.details).toEqual(details(t));
    expect(back.manifest.digest).toBe(manifest.digest);
  });

  it("writes Spark's factor schema: id INTEGER, features FLOAT[]", async () => {
    const t = tables(3, 10, 10);
    const dir = path.join(root, "schema");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    const instance = await DuckDBInstance.create(":memory:");
    const conn = await instance.connect();
    const rows = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path.join(dir, FACTORS_FILES.users)}')`)).getRows();
    conn.closeSync();
    instance.closeSync();
    expect(rows.map((r) => [r[0], r[1]])).toEqual([
      ["id", "INTEGER"],
      ["features", "FLOAT[]"],
    ]);
  });

  it("names the missing file or manifest", async () => {
    const t = tables(2, 4, 4);
    const dir = path.join(root, "missing");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    await rm(path.join(dir, FACTORS_FILES.items));
    await expect(readFactors(dir)).rejects.toThrow(MissingArtifactError);
    await expect(readFactors(dir)).rejects.toThrow(FACTORS_FILES.items);
    await expect(readFactors(path.join(root, "nowhere"))).rejects.toThrow(MissingArtifactError);
  });

  it("rejects a wrong schema, a rank mismatch and non-Parquet content, naming the file", async () => {
    const t = tables(3, 6, 6);
    const dir = path.join(root, "bad");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    const users = path.join(dir, FACTORS_FILES.users);
    const items = path.join(dir, FACTORS_FILES.items);

    await sql(`COPY (SELECT id::BIGINT AS id, features FROM read_parquet('${users}')) TO '${users}.x' (FORMAT parquet)`);
    await rm(users);
    await sql(`COPY (SELECT * FROM read_parquet('${users}.x')) TO '${users}' (FORMAT parquet)`);
    await expect(readFactors(dir)).rejects.toThrow(CorruptArtifactError);
    await expect(readFactors(dir)).rejects.toThrow(/user_factors\.parquet: wrong schema/);

    await sql(`COPY (SELECT id::INTEGER AS id, features[1:2] AS features FROM read_parquet('${users}.x')) TO '${users}' (FORMAT parquet)`);
    await expect(readFactors(dir)).rejects.toThrow(/user_factors\.parquet: rank 2 does not match the manifest's rank 3/);

    await sql(
      `COPY (SELECT id::INTEGER AS id, CASE WHEN id = 0 THEN features[1:2] ELSE features END AS features FROM read_parquet('${users}.x')) TO '${users}' (FORMAT parquet)`,
    );
    await expect(readFactorFile(users)).rejects.toThrow(/lengths 2\.\.3/);

    await sql(`COPY (SELECT id::INTEGER AS id, features FROM read_parquet('${users}.x')) TO '${users}' (FORMAT parquet)`);
    await writeFile(items, "id,features\n1,2\n");
    await expect(readFactors(dir)).rejects.toThrow(/item_factors\.parquet: not a readable Parquet file/);
    expect((await readManifest(dir)).kind).toBe("factors");
  });

  it("a factors manifest with an edited detail, or cut short, is corrupt, naming the file and the field", async () => {
    const t = tables(2, 3, 3);
    const dir = path.join(root, "edited-manifest");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    const file = path.join(dir, "manifest.json");
    const text = await readFile(file, "utf8");
    const edits: Array<[(d: Record<string, unknown>) => void, RegExp]> = [
      [(d) => (d.rank = 0), /manifest\.json: details: rank: /],
      [(d) => (d.splitProp = "0.8"), /manifest\.json: details: splitProp: /],
      [(d) => (d.ratings = { digest: "sha256:abc", rows: 1 }), /manifest\.json: details: ratings\.digest: /],
    ];
    for (const [edit, message] of edits) {
      const m = JSON.parse(text) as { details: Record<string, unknown> };
      edit(m.details);
      await writeFile(file, JSON.stringify(m));
      const error = await readFactors(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptArtifactError);
      expect((error as Error).message).toMatch(message);
    }
    await writeFile(file, text.slice(0, text.length - 40));
    await expect(readFactors(dir)).rejects.toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid JSON`));
    await writeFile(file, text);
    expect((await readFactors(dir)).rank).toBe(2);
  });

  it("refuses a factor file holding a NaN, naming the file and the row's id (bad input, exit 3)", async () => {
    const t = tables(3, 6, 6);
    const dir = path.join(root, "nan");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    const users = path.join(dir, FACTORS_FILES.users);
    await sql(
      `COPY (SELECT id, CASE WHEN id = 7919 THEN [features[1], 'nan'::FLOAT, features[3]] ELSE features END AS features FROM read_parquet('${users}')) TO '${users}.x' (FORMAT parquet)`,
    );
    await sql(`COPY (SELECT * FROM read_parquet('${users}.x')) TO '${users}' (FORMAT parquet)`);
    await expect(readFactors(dir)).rejects.toThrow(BadInputError);
    await expect(readFactors(dir)).rejects.toThrow(`${users}: id 7919: features[1] is NaN`);
    await sql(
      `COPY (SELECT id, CASE WHEN id = 0 THEN [features[1], features[2], 'inf'::FLOAT] ELSE features END AS features FROM read_parquet('${users}.x')) TO '${users}' (FORMAT parquet)`,
    );
    await expect(readFactorFile(users)).rejects.toThrow(/id 0: features\[2\] is Infinity/);
  });

  it("an abort while the files are written discards the staging directory: nothing is published", async () => {
    const t = tables(3, 6, 6);
    const parent = path.join(root, "abort-write");
    const controller = new AbortController();
    controller.abort();
    const attempt = writeFactorsArtifact(path.join(parent, "out"), {
      tables: t,
      details: details(t),
      params: {},
      metrics: {},
      signal: controller.signal,
    });
    await expect(attempt).rejects.toBeInstanceOf(InterruptedError);
    expect(existsSync(parent) ? await readdir(parent) : []).toEqual([]);
  });
});

describe("Apache Arrow views", () => {
  it("readFactors({ arrow: true }) gives id Int32 + features FixedSizeList<Float32>[rank] tables over the same typed arrays", async () => {
    const t = tables(4, 3000, 500);
    const dir = path.join(root, "arrow");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    const f = await readFactors(dir, { arrow: true });
    for (const [table, ids, factors] of [
      [f.arrow.users, f.userIds, f.userFactors],
      [f.arrow.items, f.itemIds, f.itemFactors],
    ] as const) {
      expect(String(table.schema.fields.map((x) => `${x.name}: ${x.type}`))).toBe("id: Int32,features: FixedSizeList[4]<Float32>");
      expect(table.numRows).toBe(ids.length);
      const idData = table.getChild("id")!.data;
      const featureData = table.getChild("features")!.data;
      expect(idData).toHaveLength(1);
      expect(featureData).toHaveLength(1);
      // Zero-copy: the column buffers are the arrays readFactors returned, not copies of them.
      expect(idData[0].values).toBe(ids);
      expect(featureData[0].children[0].values).toBe(factors);
      expect(featureData[0].children[0].values.buffer).toBe(factors.buffer);
      const row = 123;
      expect(table.get(row)!.id).toBe(ids[row]);
      expect(Array.from(table.getChild("features")!.get(row)!)).toEqual(Array.from(factors.subarray(row * 4, row * 4 + 4)));
      // Writes through the typed array show in the table: one memory.
      factors[row * 4] = 42;
      expect(table.getChild("features")!.get(row)!.get(0)).toBe(42);
    }
    const plain = await readFactors(dir);
    expect("arrow" in plain).toBe(false);
  });

  it("predictTable gives (userId, movieId, prediction) with the predictions' buffer", async () => {
    const t = tables(3, 20, 10);
    const dir = path.join(root, "arrow-predict");
    await writeFactorsArtifact(dir, { tables: t, details: details(t), params: {}, metrics: {} });
    const f = await readFactors(dir);
    const users = Int32Array.from([f.userIds[0], f.userIds[5], -1]);
    const movies = Int32Array.from([f.itemIds[1], f.itemIds[2], f.itemIds[3]]);
    const table = await predictTable(dir, users, movies);
    expect(table.schema.fields.map((x) => `${x.name}: ${x.type}`)).toEqual(["userId: Int32", "movieId: Int32", "prediction: Float64"]);
    expect(table.getChild("userId")!.data[0].values).toBe(users);
    expect(table.getChild("movieId")!.data[0].values).toBe(movies);
    expect(Array.from(table.getChild("prediction")!.data[0].values)).toEqual(Array.from(predictWith(f, users, movies)));
    expect(Number.isNaN(table.get(2)!.prediction)).toBe(true);
    const predictions = predictWith(f, users, movies);
    const shared = await predictionsTable(users, movies, predictions);
    expect(shared.getChild("prediction")!.data[0].values).toBe(predictions);
    await expect(predictionsTable([1], [2, 3], new Float64Array(1))).rejects.toThrow(RangeError);
  });
});

describe("a full disk", () => {
  // A real small file system (tmpfs, as root); where mounting is not allowed the test says so.
  const mount = path.join(tmpdir(), `als-full-${process.pid}`);
  const mounted = (() => {
    try {
      execFileSync("mkdir", ["-p", mount]);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mount], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();
  afterAll(() => {
    if (mounted) execFileSync("umount", [mount]);
  });

  it.runIf(mounted)("while DuckDB writes the factors is a storage error (exit 8) naming the file; nothing is published", async () => {
    // Leave ~16 KB free: the staging directory fits, the factor files (~1 MB) do not.
    await writeFile(path.join(mount, "filler"), Buffer.alloc(240 * 1024));
    const t = tables(16, 8_000, 4_000);
    const out = path.join(mount, "factors");
    const error = await writeFactorsArtifact(out, { tables: t, details: details(t), params: {}, metrics: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(exitCodeFor(error)).toBe(8);
    expect((error as Error).message).toMatch(/cannot write .*\.parquet: No space left on device/);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(mount)).sort()).toEqual(["filler"]);
  });
  if (!mounted) it.skip("needs root to mount a small tmpfs", () => undefined);
});
