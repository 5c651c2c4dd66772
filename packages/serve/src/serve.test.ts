/**
 * `openModel` on factors written by @ms/als: the ALS model predicts what @ms/als predicts, knows
 * its ids, and lets `check` refuse a pair before anything is loaded. A keras model directory is
 * judged from its manifest alone: a stacked model without its tables is refused (exit 2), a
 * manifest without its feature set is corrupt (exit 5, naming the file and the field).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { predictWith, readFactors } from "@ms/als";
import { CorruptArtifactError, exitCodeFor } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kerasServing, openModel, UnservableModelError } from "./serve.js";
import { fixture, type Fixture } from "./__tests__/fixture.js";

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => fx.dispose());

async function kerasDir(name: string, details: Record<string, unknown>): Promise<string> {
  const dir = path.join(fx.root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "manifest.json"), JSON.stringify({ kind: "keras-model", details }));
  return dir;
}

describe("openModel als", () => {
  it("predicts what @ms/als predicts, for every known pair", async () => {
    const model = await openModel("als", { factors: fx.factorsDir });
    try {
      const users = Int32Array.from([3, 3, 5, 8, 8]);
      const movies = Int32Array.from([10, 40, 20, 30, 10]);
      expect(Array.from(await model.predict(users, movies))).toEqual(
        Array.from(predictWith(await readFactors(fx.factorsDir), users, movies)),
      );
      expect(model.kind).toBe("als");
      expect(model.dir).toBe(fx.factorsDir);
      expect(model.manifest.kind).toBe("factors");
      expect([model.hasUser(5), model.hasUser(4), model.hasMovie(40), model.hasMovie(41)]).toEqual([true, false, true, false]);
      expect(Array.from(model.movieIds)).toEqual([10, 20, 30, 40]);
    } finally {
      model.dispose();
    }
  });

  it("hands the known ids to `check` first; what it throws is the answer", async () => {
    const refused = new Error("user 4 unknown");
    const error = await openModel(
      "als",
      { factors: fx.factorsDir },
      {
        check: (known) => {
          if (!known.hasUser(4)) throw refused;
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toBe(refused);
  });
});

describe("a keras model directory", () => {
  it("says whether its feature set can score new pairs", async () => {
    expect(await kerasServing(await kerasDir("k-factors", { features: "factors" }))).toEqual({ features: "factors", servable: true });
    expect(await kerasServing(await kerasDir("k-stacked", { features: "stacked", stacked: { file: "t" } }))).toEqual({
      features: "stacked",
      servable: true,
    });
    expect(await kerasServing(await kerasDir("k-old", { features: "stacked" }))).toEqual({ features: "stacked", servable: false });
    expect(await kerasServing(await kerasDir("k-raw", { features: "per-rating" }))).toEqual({ features: "per-rating", servable: false });
  });

  it("that cannot score new pairs is refused by openModel, exit 2, before TensorFlow.js is loaded", async () => {
    const model = await kerasDir("k-old2", { features: "stacked" });
    const error = await openModel("keras", { factors: fx.factorsDir, model }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnservableModelError);
    expect((error as Error).message).toContain('trained on the "stacked" features without saving the tables');
    expect(exitCodeFor(error)).toBe(2);
  });

  it("whose manifest lacks the feature set, or is not JSON, is corrupt: exit 5 naming the file and field", async () => {
    const dir = await kerasDir("k-bad", { epochs: 2 });
    const error = await kerasServing(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toContain(`${path.join(dir, "manifest.json")}: details.features:`);
    expect(exitCodeFor(error)).toBe(5);
    await writeFile(path.join(dir, "manifest.json"), '{"details": {"featu');
    await expect(kerasServing(dir)).rejects.toThrow(/manifest\.json: not valid JSON/);
  });
});
