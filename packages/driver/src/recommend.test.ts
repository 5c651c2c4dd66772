/**
 * `ms recommend` and `ms predict` through the built bin, on a small synthetic run: the JSON
 * documents, scores that equal the models' own predictions, rated movies left out, the latest
 * finished run found through the tracking store (or `--run`, a child run id meaning its parent),
 * clear errors: an unknown user for recommend (exit 2), a bad pairs file (exit 3, file and line),
 * an unknown movie for predict scored by the cold-start rule,
 * a run whose entries were garbage-collected (exit 4).
 */
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { predict as alsPredict } from "@ms/als";
import { loadModel, predictStackedPairs } from "@ms/keras";
import { exitCodeFor } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";
import { openModel, UnservableModelError } from "@ms/serve";

let box: Sandbox;
let run: RunDoc;

beforeAll(async () => {
  box = await sandbox("ms-driver-recommend-");
  // The factors feature set, quick to train; the default (stacked) model has its own test below.
  run = await runJson([...SMALL, "-P", "keras_features=factors"], box);
});
afterAll(async () => box.dispose());

async function json<T>(args: string[]): Promise<T> {
  const r = await ms([...args, "--json"], box);
  if (r.code !== 0) throw new Error(`ms ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

interface Recs {
  runId: string;
  model: string;
  recommendations: { movieId: number; title: string | null; score: number }[];
}

/** The synthetic ratings file as written by the download step, read as text. */
async function ratedBy(user: number): Promise<Set<number>> {
  const file = run.steps[0].outputs.ratings.file!;
  const rated = new Set<number>();
  for (const line of (await readFile(file, "utf8")).split("\n").slice(1)) {
    const [u, m] = line.split(",");
    if (Number(u) === user) rated.add(Number(m));
  }
  return rated;
}

describe("ms recommend", () => {
  it("ranks unrated movies by the ALS model's own predictions, highest first", async () => {
    const doc = await json<Recs>(["recommend", "--user", "3", "--top", "5", "--model", "als"]);
    expect(doc.runId).toBe(run.runId);
    expect(doc.recommendations).toHaveLength(5);
    const ids = doc.recommendations.map((r) => r.movieId);
    const scores = doc.recommendations.map((r) => r.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    const expected = await alsPredict(run.steps[2].outputs.factors.dir!, new Int32Array(5).fill(3), Int32Array.from(ids));
    for (let i = 0; i < 5; i++) expect(scores[i]).toBeCloseTo(expected[i], 4);
    const rated = await ratedBy(3);
    expect(rated.size).toBeGreaterThan(0);
    for (const id of ids) expect(rated.has(id)).toBe(false);
    expect(doc.recommendations.every((r) => r.title === null)).toBe(true); // synthetic data has no movies file
  });

  it("--model keras agrees with ms predict (whose default is keras) on the same pairs", async () => {
    const doc = await json<Recs>(["recommend", "--user", "5", "--top", "3", "--model", "keras"]);
    expect(doc.model).toBe("keras");
    const pairs = path.join(box.root, "pairs.csv");
    await writeFile(pairs, `userId,movieId\n${doc.recommendations.map((r) => `5,${r.movieId}`).join("\n")}\n`);
    const p = await json<{ predictions: { userId: number; movieId: number; rating: number }[] }>(["predict", "--pairs", pairs]);
    expect(p.predictions.map((x) => x.movieId)).toEqual(doc.recommendations.map((r) => r.movieId));
    for (const [i, x] of p.predictions.entries()) expect(x.rating).toBeCloseTo(doc.recommendations[i].score, 4);
  });

  it("--run takes a parent or a child run id; the text output is a table", async () => {
    const r = await ms(["recommend", "--user", "3", "--top", "2", "--model", "als", "--run", run.steps[4].runId], box);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^#\s+movie\s+score\s+title/);
    expect(r.stdout).toContain(`als model of run ${run.runId}`);
  });

  it("reads under a lease it releases: no lease is left behind, and the entries stay for the next reader", async () => {
    expect((await ms(["recommend", "--user", "3", "--top", "1"], box)).code).toBe(0);
    const leases = await readdir(path.join(box.cache, "leases")).catch(() => []);
    expect(leases.filter((f) => f.endsWith(".lease"))).toEqual([]);
    expect((await ms(["predict", "--user", "3", "--movie", "1", "--model", "als"], box)).code).not.toBe(4);
  });

  it("an unknown user is exit 2 naming the user and the run", async () => {
    const r = await ms(["recommend", "--user", "999999"], box);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`user 999999 is not in the ratings of run ${run.runId}`);
    expect((await ms(["recommend", "--user", "x"], box)).code).toBe(2);
    expect((await ms(["recommend", "--user", "3", "--model", "svd"], box)).code).toBe(2);
  });

  it("--user and --movie are decimal digits: 0x3, 3e0 and 3.0 are refused naming the flag, not read as user 3", async () => {
    for (const [flag, raw] of [
      ["--user", "0x3"],
      ["--user", "3e0"],
      ["--movie", "3.0"],
    ]) {
      const args = flag === "--user" ? ["recommend", "--user", raw] : ["predict", "--user", "3", "--movie", raw];
      const r = await ms(args, box);
      expect(r.code, raw).toBe(2);
      expect(r.stderr).toContain(`${flag}: "${raw}" is not an id (decimal digits)`);
    }
  });
});

describe("a stacked keras model without its tables (from before they were saved)", () => {
  it("is refused for new pairs with a clear error (exit 2), before TensorFlow.js is loaded", async () => {
    const copy = path.join(box.root, "stacked-model");
    await cp(run.steps[4].outputs.model.dir!, copy, { recursive: true });
    const manifestFile = path.join(copy, "manifest.json");
    const manifest = JSON.parse(await readFile(manifestFile, "utf8"));
    manifest.details.features = "stacked";
    delete manifest.details.stacked;
    await writeFile(manifestFile, JSON.stringify(manifest));
    const error = await openModel("keras", { factors: run.steps[2].outputs.factors.dir!, model: copy }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnservableModelError);
    expect((error as Error).message).toContain('trained on the "stacked" features without saving the tables');
    expect(exitCodeFor(error)).toBe(2);
  });
});

describe("ms predict", () => {
  it("prints { predictions: [{ userId, movieId, rating }] } for --user/--movie", async () => {
    const recs = await json<Recs>(["recommend", "--user", "3", "--top", "1", "--model", "als"]);
    const movie = recs.recommendations[0].movieId;
    const doc = await json<{ predictions: unknown[] }>(["predict", "--user", "3", "--movie", String(movie), "--model", "als"]);
    expect(doc.predictions).toEqual([{ userId: 3, movieId: movie, rating: recs.recommendations[0].score }]);
  });

  it("an unknown movie is scored by the cold-start rule, marked cold; a bad pairs line is exit 3 naming the file and line", async () => {
    const r = await ms(["predict", "--user", "3", "--movie", "987654321"], box);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^3\s+987654321\s+\d\.\d{3}\s+movie$/m);
    const bad = path.join(box.root, "bad.csv");
    await writeFile(bad, "3,5\n3,five\n");
    const b = await ms(["predict", "--pairs", bad], box);
    expect(b.code).toBe(3);
    expect(b.stderr).toContain(`${bad}:2: not a "userId,movieId" line`);
  });

  it("a run whose entries were removed by gc is exit 4 and says to rerun", async () => {
    expect((await ms(["cache", "gc", "--older-than", "0"], box)).code).toBe(0);
    const r = await ms(["predict", "--user", "3", "--movie", "1"], box);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/is not in the cache .*rerun 'ms run'/);
  });
});

describe("the latest run's default (stacked) keras model", () => {
  it("answers ms recommend --model keras, with the scores ms predict and the model's own tables give", async () => {
    const stacked = await runJson(SMALL, box);
    const r = await ms(["recommend", "--user", "3", "--top", "3", "--model", "keras", "--json"], box);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Recs;
    expect(doc.runId).toBe(stacked.runId);
    expect(doc.model).toBe("keras");
    expect(r.stderr).not.toContain("cannot score new pairs");
    const movies = doc.recommendations.map((x) => x.movieId);
    const pairsFile = path.join(box.root, "stacked-pairs.csv");
    await writeFile(pairsFile, movies.map((m) => `3,${m}`).join("\n") + "\n");
    const pairs = await json<{ predictions: { rating: number }[] }>(["predict", "--pairs", pairsFile]);
    expect(pairs.predictions.map((p) => p.rating)).toEqual(doc.recommendations.map((x) => x.score));
    const loaded = await loadModel(stacked.steps[4].outputs.model.dir!, { backend: "wasm" });
    try {
      const direct = await predictStackedPairs(loaded, new Int32Array(movies.length).fill(3), Int32Array.from(movies));
      for (let i = 0; i < movies.length; i++) expect(doc.recommendations[i].score).toBeCloseTo(direct[i], 4);
    } finally {
      loaded.model.dispose();
    }
  });
});
