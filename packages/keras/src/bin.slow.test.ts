/**
 * `ms-keras` (the built dist/bin.js) stops on SIGTERM / SIGINT in the middle of an epoch: the fit
 * loop polls the step's signal between batches, so the bin exits 130 within 2 s and publishes
 * nothing, neither the model nor a staging directory beside --out.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeFeatures, writeFixture, type FixtureDirs } from "./__tests__/fixtures.js";

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = path.join(pkg, "dist", "bin.js");
let root: string;
let fx: FixtureDirs;
let feats: string;

beforeAll(async () => {
  if (!existsSync(bin)) execFileSync(path.join(pkg, "..", "..", "node_modules", ".bin", "tsup"), { cwd: pkg, stdio: "ignore" });
  root = await tempDir();
  // About 200,000 ratings: at batch 4 one epoch takes well over the few seconds the test waits.
  fx = await writeFixture(root, { users: 800, movies: 500, density: 0.5, seed: 5 });
  // The seed's features: this test is about the training loop's signals, not the out-of-fold fits.
  feats = await writeFeatures(fx, path.join(root, "fm"), { fm_model: "none" });
}, 120_000);

afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe("ms-keras signals", () => {
  it.each(["SIGTERM", "SIGINT"] as const)(
    "%s during an epoch exits 130 within 2 s and leaves nothing in or next to --out",
    async (sig) => {
      const parent = path.join(root, `signal-${sig}`);
      const out = path.join(parent, "model");
      const args = [
        bin,
        "--ratings",
        fx.ratingsDir,
        "--factors",
        fx.factorsDir,
        "--features",
        feats,
        "--out",
        out,
        "--keras-epochs",
        "20",
        "--keras-patience",
        "20",
        "--keras-batch-size",
        "4",
        "--keras-backend",
        "wasm",
        "--keras-features",
        "factors",
      ];
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
      let stderr = "";
      const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
        child.on("exit", (code) => resolve({ code, at: performance.now() })),
      );
      await new Promise<void>((resolve, reject) => {
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes("TensorFlow.js backend")) resolve();
        });
        child.on("exit", () => reject(new Error(`ms-keras exited before training: ${stderr}`)));
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
      expect(stderr).not.toMatch(/epoch 1\/20/);
      expect(existsSync(parent) ? await fs.readdir(parent) : []).toEqual([]);
    },
    60_000,
  );
});
