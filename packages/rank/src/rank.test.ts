/**
 * The rank step end to end on a real etl artifact of synthetic ratings: the artifact it publishes,
 * its metrics (own model and popularity, k in the names), serving it back with openRanker, and the
 * errors for a damaged artifact and a split etl did not write.
 */
import { CorruptArtifactError, MemoryMetrics, MissingArtifactError } from "@ms/contracts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticRatingsDir } from "./__tests__/fixtures.js";
import { RANKER_FILES, readRankerArtifact } from "./adapter.js";
import { resolveRankParams } from "./params.js";
import { openRanker, rank } from "./rank.js";

let root: string;
let ratings: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-rank-"));
  ratings = await syntheticRatingsDir(root, "ratings", { rows: 6000, users: 150, movies: 300 });
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("rank", () => {
  it("publishes an EASE ranker with its and popularity's ranking metrics, and serves it back", async () => {
    const sink = new MemoryMetrics();
    const out = path.join(root, "ease");
    const params = resolveRankParams({ rank_max_items: 120, rank_neighbors: 20, rank_k: 5 });
    const result = await rank({ ratings }, params, out, { metrics: sink });
    const m = result.metrics;
    for (const key of [
      "ndcg_at_5",
      "precision_at_5",
      "recall_at_5",
      "map_at_5",
      "hit_rate_at_5",
      "coverage_at_5",
      "popularity_ndcg_at_5",
    ]) {
      expect(m[key]).toBeGreaterThanOrEqual(0);
      expect(m[key]).toBeLessThanOrEqual(1);
    }
    expect(m.eval_users).toBeGreaterThan(100);
    expect(m.model_items).toBe(120);
    expect(sink.values.some((x) => x.key === "ndcg_at_5")).toBe(true);
    const artifact = await readRankerArtifact(out);
    expect(artifact.manifest.details.entries).toBe(120 * 20);
    const ranker = await openRanker(out);
    const list = ranker.recommend(Int32Array.from(ranker.itemIds.subarray(0, 5)), 10);
    expect(list.items.length).toBe(10);
    for (const id of list.items) expect(ranker.itemIds.subarray(0, 5)).not.toContain(id);
    expect(list.reasons?.length).toBe(10);
  }, 60_000);

  it("scores the popularity model as the EASE run's popularity baseline", async () => {
    const a = await rank({ ratings }, resolveRankParams({ rank_model: "popularity" }), path.join(root, "pop"));
    const b = await rank({ ratings }, resolveRankParams({ rank_max_items: 50 }), path.join(root, "ease50"));
    expect(a.metrics.ndcg_at_10).toBe(b.metrics.popularity_ndcg_at_10);
    expect(a.metrics.model_items).toBe(0);
  }, 60_000);

  it("refuses a damaged artifact, naming the file", async () => {
    const out = path.join(root, "damaged");
    await rank({ ratings }, resolveRankParams({ rank_max_items: 40 }), out);
    await writeFile(path.join(out, RANKER_FILES.cols), Buffer.alloc(8));
    await expect(readRankerArtifact(out)).rejects.toThrow(CorruptArtifactError);
    await expect(readRankerArtifact(out)).rejects.toThrow(RANKER_FILES.cols);
    await rm(path.join(out, RANKER_FILES.values));
    await expect(readRankerArtifact(out)).rejects.toThrow(CorruptArtifactError);
    await expect(openRanker(path.join(root, "nothing-here"))).rejects.toThrow(MissingArtifactError);
  }, 60_000);

  it("refuses split=time on ratings etl wrote without its key", async () => {
    await expect(rank({ ratings }, resolveRankParams({ split: "time" }), path.join(root, "time"))).rejects.toThrow(/split/);
  }, 60_000);
});
