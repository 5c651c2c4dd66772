/**
 * The built `ms-als` bin as a user runs it: one JSON document on stdout in the shape,
 * errors on stderr with the right exit code, and no output left behind on failure.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { smallRatings, writeRatingsParquet, syntheticRatingsDir } from "./fixtures.js";

const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
let root: string;
let ratingsDir: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-bin-"));
  ratingsDir = await syntheticRatingsDir(root, "synth", { rows: 10_000, users: 200, movies: 300 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
}

describe("ms-als", () => {
  it("is built", () => {
    expect(existsSync(BIN)).toBe(true);
  });

  it("--json prints only { outputs: { userFactors, itemFactors }, metrics }", () => {
    const out = path.join(root, "out");
    const r = run(["--ratings-data", ratingsDir, "--out", out, "--json", "--rank", "4", "--max-iter", "3", "--num-threads", "2"]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(["metrics", "outputs"]);
    expect(doc.outputs).toEqual({ userFactors: { path: path.join(out, "user_factors.parquet") }, itemFactors: { path: path.join(out, "item_factors.parquet") } });
    for (const k of ["training_nrows", "test_nrows", "train_mse", "test_mse", "train_rmse", "test_rmse", "fit_seconds"]) expect(typeof doc.metrics[k]).toBe("number");
    expect(doc.metrics.training_nrows + doc.metrics.test_nrows).toBe(10_000);
  });

  it("--help exits 0 and lists the flags", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    for (const flag of ["--ratings-data", "--rank", "--max-iter", "--reg-param", "--split-prop", "--seed", "--num-threads", "--cold-start-strategy"]) expect(r.stdout).toContain(flag);
  });

  it("a bad parameter exits 2 naming it; bad input exits 3 naming the file; nothing is written", async () => {
    const out = path.join(root, "bad", "out");
    const bad = run(["--ratings-data", ratingsDir, "--out", out, "--reg-param", "-1"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("parameter reg_param:");
    expect(bad.stdout).toBe("");
    const split = run(["--ratings-data", ratingsDir, "--out", out, "--split-prop", "1", "--json"]);
    expect(split.status).toBe(2);
    expect(JSON.parse(split.stdout).error.code).toBe("BAD_PARAMETER");
    const rows = smallRatings(10, 10);
    rows.ratings[3] = Number.NaN;
    const file = path.join(root, "nan.parquet");
    await writeRatingsParquet(file, rows);
    const nan = run(["--ratings-data", file, "--out", out]);
    expect(nan.status).toBe(3);
    expect(nan.stderr).toMatch(/nan\.parquet: row 4: rating is NaN/);
    expect(existsSync(path.join(root, "bad")) ? await readdir(path.join(root, "bad")) : []).toEqual([]);
  });
});
