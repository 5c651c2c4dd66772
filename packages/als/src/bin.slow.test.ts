/**
 * The built `ms-als` bin as a user runs it: one JSON document on stdout in the shape,
 * errors on stderr with the right exit code, no output left behind on failure, and SIGTERM /
 * SIGINT honoured in the middle of a long half-sweep.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { smallRatings, writeRatingsParquet, syntheticRatingsDir } from "./__tests__/fixtures.js";

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

  it("--json prints only { outputs: { factors }, metrics }, the flags being the -P names", () => {
    const out = path.join(root, "out");
    const r = run(["--ratings", ratingsDir, "--out", out, "--json", "--als-rank", "4", "--als-max-iter", "3", "--als-num-threads", "2"]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(["metrics", "outputs"]);
    expect(doc.outputs).toEqual({
      factors: {
        kind: "factors",
        dir: out,
        digest: expect.stringMatching(/^sha256:/),
        files: [path.join(out, "user_factors.parquet"), path.join(out, "item_factors.parquet")],
      },
    });
    for (const k of ["training_nrows", "test_nrows", "train_mse", "test_mse", "train_rmse", "test_rmse", "fit_seconds"])
      expect(typeof doc.metrics[k]).toBe("number");
    expect(doc.metrics.training_nrows + doc.metrics.test_nrows).toBe(10_000);
  });

  it("--help exits 0 and lists the flags", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    for (const flag of [
      "--ratings",
      "--als-rank",
      "--als-max-iter",
      "--als-reg-param",
      "--split-prop",
      "--seed",
      "--als-num-threads",
      "--als-cold-start-strategy",
      "--als-engine",
    ])
      expect(r.stdout).toContain(flag);
    expect(r.stdout).not.toMatch(/default [^;]*; no default/);
  });

  it("a bad parameter exits 2 naming it; bad input exits 3 naming the file; nothing is written", async () => {
    const out = path.join(root, "bad", "out");
    const bad = run(["--ratings", ratingsDir, "--out", out, "--als-reg-param", "-1"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("parameter als_reg_param:");
    expect(bad.stdout).toBe("");
    const split = run(["--ratings", ratingsDir, "--out", out, "--split-prop", "1", "--json"]);
    expect(split.status).toBe(2);
    expect(JSON.parse(split.stdout).error.code).toBe("BAD_PARAMETER");
    const rows = smallRatings(10, 10);
    rows.ratings[3] = Number.NaN;
    const file = path.join(root, "nan.parquet");
    await writeRatingsParquet(file, rows);
    const nan = run(["--ratings", file, "--out", out]);
    expect(nan.status).toBe(3);
    expect(nan.stderr).toMatch(/nan\.parquet: row 4: rating is NaN/);
    expect(existsSync(path.join(root, "bad")) ? await readdir(path.join(root, "bad")) : []).toEqual([]);
  });

  // Rank 300 runs the generic JS kernel: one half-sweep over 30,000 ratings takes many seconds,
  // so the signal lands in the middle of one (the "fitting" log line comes just before it).
  it.each([
    ["SIGTERM", "1"],
    ["SIGINT", "2"],
  ] as const)(
    "%s during a long half-sweep (als-num-threads %s) exits 130 within 2 s and leaves nothing in or next to --out",
    async (sig, threads) => {
      const big = await syntheticRatingsDir(root, `big-${sig}`, { rows: 30_000, users: 1000, movies: 1000 });
      const parent = path.join(root, `signal-${sig}`);
      const out = path.join(parent, "out");
      const child = spawn(
        process.execPath,
        [
          BIN,
          "--ratings",
          big,
          "--out",
          out,
          "--als-rank",
          "300",
          "--als-max-iter",
          "1",
          "--als-num-threads",
          threads,
          "--log-level",
          "info",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
        child.on("exit", (code) => resolve({ code, at: performance.now() })),
      );
      await new Promise<void>((resolve, reject) => {
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes("ratings loaded and laid out")) resolve();
        });
        child.on("exit", () => reject(new Error(`ms-als exited before the fit: ${stderr}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const sent = performance.now();
      child.kill(sig);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const { code, at } = await exited;
      clearTimeout(timer);
      expect(code).toBe(130);
      expect(at - sent).toBeLessThan(2000);
      expect(stderr).toContain(`interrupted by ${sig}`);
      expect(stderr).not.toContain("als: iteration");
      expect(existsSync(parent) ? await readdir(parent) : []).toEqual([]);
    },
    60_000,
  );
});
