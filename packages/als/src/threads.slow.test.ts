/**
 * Bit-for-bit independence of the thread count: the same factors files for 1, 2 and 3 threads.
 * Needs the built worker (the package's `test` target builds first).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { als } from "./als.js";
import { resolveAlsParams } from "./params.js";
import { syntheticRatingsDir } from "./__tests__/fixtures.js";
import { workerScript } from "./pool.js";

let root: string;
let ratingsDir: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-threads-"));
  ratingsDir = await syntheticRatingsDir(root, "synth", { rows: 60_000, users: 800, movies: 900 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("threads", () => {
  it("finds the built worker script (run `pnpm --filter @ms/als build` first)", () => {
    expect(workerScript()).toBeDefined();
  });

  it.each([false, true])("gives identical bytes for 1, 2 and 3 threads (nonnegative: %s)", async (nonnegative) => {
    const digests: string[] = [];
    const bytes: Buffer[] = [];
    const metrics: number[] = [];
    for (const numThreads of [1, 2, 3]) {
      const out = path.join(root, `t${numThreads}-${nonnegative}`);
      const r = await als(
        { ratings: ratingsDir },
        resolveAlsParams({ als_num_threads: numThreads, als_max_iter: 5, als_nonnegative: nonnegative }),
        out,
      );
      digests.push(r.manifest.digest);
      bytes.push(await readFile(r.paths.userFactors));
      metrics.push(r.metrics.train_loss, r.metrics.test_mse);
    }
    expect(digests[1]).toBe(digests[0]);
    expect(digests[2]).toBe(digests[0]);
    expect(bytes[1].equals(bytes[0]) && bytes[2].equals(bytes[0])).toBe(true);
    expect(metrics.slice(2, 4)).toEqual(metrics.slice(0, 2));
    expect(metrics.slice(4, 6)).toEqual(metrics.slice(0, 2));
  });
});
