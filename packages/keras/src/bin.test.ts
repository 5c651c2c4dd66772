/**
 * `ms-keras` as a user runs it (the built dist/bin.js): `--json` prints exactly one document on
 * stdout, bad flags exit non-zero with a message on stderr, `--help` works. Builds dist first
 * when it is missing or older than the sources.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, promises as fs, statSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFeatures, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = path.join(pkg, "dist", "bin.js");
let root: string;
let fx: FixtureDirs;
let feats: string;

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

beforeAll(async () => {
  if (!existsSync(bin) || statSync(bin).mtimeMs < newestSource(path.join(pkg, "src"))) {
    execFileSync(path.join(pkg, "..", "..", "node_modules", ".bin", "tsup"), { cwd: pkg, stdio: "ignore" });
  }
  root = await tempDir();
  fx = await writeFixture(root, { users: 40, movies: 30, seed: 4 });
  feats = await writeFeatures(fx, path.join(root, "fm"));
});

afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

function run(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, LOG_LEVEL: "info" } });
}

describe("ms-keras", () => {
  it("--json prints only the outputs and metrics; progress goes to stderr", () => {
    const out = path.join(root, "m");
    const r = run([
      "--ratings",
      fx.ratingsDir,
      "--factors",
      fx.factorsDir,
      "--features",
      feats,
      "--out",
      out,
      "--keras-epochs",
      "2",
      "--keras-batch-size",
      "16",
      "--keras-backend",
      "wasm",
      "--json",
    ]);
    expect(r.stderr).toMatch(/epoch 1\/2/);
    expect(r.stderr).toMatch(/backend wasm/);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      outputs: { model: { kind: string; dir: string; files: string[] } };
      metrics: Record<string, number>;
    };
    expect(Object.keys(doc)).toEqual(["outputs", "metrics"]);
    expect(doc.outputs.model).toMatchObject({ kind: "keras-model", dir: out });
    expect(doc.outputs.model.files).toContain(path.join(out, "model.json"));
    for (const file of doc.outputs.model.files) expect(existsSync(file)).toBe(true);
    for (const k of ["training_nrows", "test_nrows", "train_mse", "test_mse", "test_rmse"]) expect(typeof doc.metrics[k]).toBe("number");
  });

  it("reports batch progress within an epoch (debug when piped; the driver's terminal line shows it)", () => {
    const out = path.join(root, "m-batches");
    const r = run([
      "--ratings",
      fx.ratingsDir,
      "--factors",
      fx.factorsDir,
      "--features",
      feats,
      "--out",
      out,
      "--keras-epochs",
      "1",
      "--keras-batch-size",
      "16",
      "--keras-features",
      "seed",
      "--keras-backend",
      "wasm",
      "--log-level",
      "debug",
    ]);
    expect(r.status).toBe(0);
    const batch = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((rec) => typeof rec.batch === "number");
    expect(batch).toMatchObject({ level: 20, epoch: 1, of: 1, batch: 1 });
    expect(batch?.batches).toBeGreaterThan(1);
  });

  it("refuses an --als-model whose factor file was edited in place with its size kept (exit 5, nothing written)", async () => {
    const copy = path.join(root, "edited-factors");
    await fs.cp(fx.factorsDir, copy, { recursive: true });
    const file = path.join(copy, "user_factors.parquet");
    const bytes = await fs.readFile(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await fs.writeFile(file, bytes);
    const out = path.join(root, "m-edited");
    const r = run([
      "--ratings",
      fx.ratingsDir,
      "--factors",
      copy,
      "--features",
      feats,
      "--out",
      out,
      "--keras-epochs",
      "1",
      "--keras-backend",
      "wasm",
    ]);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain("user_factors.parquet");
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    [["--keras-hidden-units", "0"], /parameter keras_hidden_units:/],
    [["--keras-batch-size", "0"], /parameter keras_batch_size:/],
    [["--keras-epochs", "0"], /parameter keras_epochs:/],
    [["--keras-learning-rate", "0"], /parameter keras_learning_rate: must be a number > 0/],
    [["--keras-learning-rate", "-0.1"], /parameter keras_learning_rate:/],
    [["--keras-backend", "gpu"], /parameter keras_backend: "gpu" is not one of/],
    [["--keras-hidden-units", "1e9"], /keras_hidden_units: must be an integer in \[1, 4096\], got 1000000000/],
    [["--keras-batch-size", "100000000"], /keras_batch_size/],
    [["--keras-learning-rate", "1e300"], /keras_learning_rate: training diverged/],
  ])("%o exits 2 with a message and leaves no model", (flags, pattern) => {
    const out = path.join(root, `bad-${flags.join("")}`);
    const r = run(["--ratings", fx.ratingsDir, "--factors", fx.factorsDir, "--features", feats, "--out", out, ...flags]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stdout).toBe("");
    expect(existsSync(out)).toBe(false);
  });

  it("exits 4 on a missing factors directory", () => {
    const out = path.join(root, "missing");
    const r = run(["--ratings", fx.ratingsDir, "--factors", path.join(root, "nope"), "--out", out]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/nope/);
    expect(existsSync(out)).toBe(false);
  });

  it("--help lists the flags", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    for (const flag of [
      "--ratings",
      "--factors",
      "--features",
      "--keras-hidden-units",
      "--keras-learning-rate",
      "--keras-patience",
      "--keras-backend",
      "--keras-allow-foreign-factors",
    ])
      expect(r.stdout).toContain(flag);
    // A parameter whose default depends on the feature set says so once, not "default ...; no default".
    expect(r.stdout).toMatch(
      /--keras-epochs N +training epochs \(early stopping may end sooner\); default 6 stacked, 3 the seed's features;/,
    );
    expect(r.stdout).toMatch(/--keras-batch-size N +ratings per gradient step; default 128;/);
    expect(r.stdout).not.toContain("no default");
  });
});
