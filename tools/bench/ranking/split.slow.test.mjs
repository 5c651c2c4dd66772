/**
 * The bench's split export round-trips the pipeline's split: after a real `ms run -P split=kfold
 * -P fold=2` on generated ratings, the rows splitOfRun reads back are every input rating once,
 * the test rows exactly fold 2 (computed here with foldOf, independently of the run), the counts
 * the als step reports, and the training users and movies exactly those the als step fitted
 * factors for; writeRows/readRows keep them bit for bit.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readFactors } from "@ms/als";
import { foldOf } from "@ms/contracts";
import { writeSyntheticRatings } from "@ms/etl";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { outputDir, readRows, splitOfRun, writeRows } from "./split.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const dir = mkdtempSync(path.join(os.tmpdir(), "ms-ranking-split-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const csv = path.join(dir, "ratings.csv");
let report;
let split;

beforeAll(async () => {
  writeSyntheticRatings(csv, { rows: 3000, seed: 7, kind: "lowrank" });
  const args = [path.join(root, "packages/driver/dist/bin.js"), "run", "--ratings-csv", csv];
  for (const p of ["split=kfold", "fold=2", "seed=42", "max_row_limit=-1", "als_num_threads=1", "fm_num_threads=1"]) args.push("-P", p);
  args.push("--cache-dir", path.join(dir, "cache"), "--tracking-uri", path.join(dir, "mlruns"), "--no-report", "--json");
  const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 26, env: { ...process.env, LOG_LEVEL: "warn" } });
  expect(r.status, r.stderr).toBe(0);
  report = JSON.parse(r.stdout);
  split = await splitOfRun(report);
});

const line = (rows, i) => `${rows.users[i]},${rows.items[i]},${rows.ratings[i]}`;

describe("splitOfRun", () => {
  it("reads the spec the als step recorded", () => {
    expect(split.spec).toMatchObject({ kind: "kfold", seed: 42, folds: 5, fold: 2 });
  });

  it("gives every input rating once, the test side exactly fold 2", () => {
    const input = readFileSync(csv, "utf8")
      .trimEnd()
      .split("\n")
      .slice(1)
      .map((l) => l.split(",").slice(0, 3).map(Number).join(","));
    const got = [];
    for (const [rows, testSide] of [
      [split.train, false],
      [split.test, true],
    ]) {
      for (let i = 0; i < rows.users.length; i++) {
        expect(foldOf(rows.users[i], rows.items[i], 42, 5) === 2).toBe(testSide);
        got.push(line(rows, i));
      }
    }
    expect(split.test.users.length).toBeGreaterThan(400);
    expect(got.sort()).toEqual(input.sort());
  });

  it("matches the als step: its row counts and the users and movies it has factors for", async () => {
    const als = report.steps.find((s) => s.step === "als");
    expect(split.train.users.length).toBe(als.metrics.training_nrows);
    expect(split.test.users.length).toBe(als.metrics.test_nrows);
    const factors = await readFactors(outputDir(report, "als", "factors"));
    expect(Array.from(factors.userIds)).toEqual([...new Set(split.train.users)].sort((a, b) => a - b));
    expect(Array.from(factors.itemIds)).toEqual([...new Set(split.train.items)].sort((a, b) => a - b));
  });

  it("round-trips through the peers' CSV", () => {
    const file = path.join(dir, "train.csv");
    writeRows(file, split.train);
    const back = readRows(file);
    expect(back.users).toEqual(split.train.users);
    expect(back.items).toEqual(split.train.items);
    expect(back.ratings).toEqual(split.train.ratings);
  });
});
