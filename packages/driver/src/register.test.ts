/**
 * `ms run --register-model` refusals that need no MLflow server, each before anything computes
 * (no run in the store, no cache entry): a file store has no registry (exit 7), a server where
 * nothing listens (exit 7, within the retry budget), a name or alias MLflow refuses and `--alias`
 * alone (exit 2). Registering against a real server is registry.slow.test.ts's.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, listDir, ms, sandbox, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
beforeAll(async () => {
  box = await sandbox("ms-driver-register-");
});
afterAll(async () => box.dispose());

/** Nothing was run or cached. */
async function expectNothingComputed(): Promise<void> {
  expect(existsSync(box.mlruns)).toBe(false);
  expect(await listDir(path.join(box.cache, "objects"))).toEqual([]);
}

describe("ms run --register-model before anything computes", () => {
  it("a file store has no model registry: exit 7", async () => {
    const r = await ms(["run", ...SMALL, "--register-model", "movielens", "--alias", "champion"], box);
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toMatch(/the tracking store .*mlruns is a file store, which has no model registry; give --tracking-uri/);
    await expectNothingComputed();
  });

  it("a tracking server where nothing listens: exit 7 within the retry budget", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await ms(["run", ...SMALL, "--register-model", "movielens", "--tracking-uri", dead], box, {
      MS_TRACKING_RETRY_TIMEOUT_MS: "1500",
    });
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toContain(dead);
    await expectNothingComputed();
  });

  it("names and aliases MLflow refuses, and --alias without --register-model: exit 2", async () => {
    for (const [args, why] of [
      [["--register-model", "team/movielens"], /--register-model: "team\/movielens": a registered model name cannot contain '\/' or ':'/],
      [["--register-model", "movielens", "--alias", "latest"], /--alias: "latest" is reserved by MLflow/],
      [["--register-model", "movielens", "--alias", "v2"], /--alias: "v2" is reserved by MLflow/],
      [["--register-model", "movielens", "--alias", "the champion"], /--alias: "the champion": an alias is 1-255 letters/],
      [["--alias", "champion"], /--alias: needs --register-model NAME/],
    ] as const) {
      const r = await ms(["run", ...SMALL, ...args], box);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
    }
    await expectNothingComputed();
  });
});
