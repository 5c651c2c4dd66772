/**
 * The rank step end to end on a real etl artifact of synthetic ratings: the artifact it publishes,
 * its metrics (own model and popularity, k in the names), serving it back with openRanker, the
 * errors for a damaged artifact and a split etl did not write; λ and β given as numbers (today's
 * fit, bit for bit) and as `auto` (the trials in the manifest, the metrics and the log).
 */
import { CorruptArtifactError, createLogger, MemoryMetrics, MissingArtifactError } from "@ms/contracts";
import { createHash } from "node:crypto";
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { PassThrough } from "node:stream";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syntheticRatingsDir } from "./__tests__/fixtures.js";
import { RANKER_FILES, readRankerArtifact } from "./adapter.js";
import { resolveRankParams } from "./params.js";
import { openRanker, rank } from "./rank.js";
import { AUTO_LAMBDAS, AUTO_PENALTIES } from "./select.js";

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

  it("fits a λ and β given as numbers exactly as before auto existed", async () => {
    // B's bytes and nDCG@10 of this fixture, from the rank step before auto (commit 9c3c9a3).
    const before = [
      { lambda: 400, beta: 0, b: "8e7768f29a5072d0560d4057c65df58fbe518e450b4864095a7df404e77213b2", ndcg: 0.22885735557788556 },
      { lambda: 250, beta: 0.2, b: "d11c36e018813a66986fa72516a90afdf51ebb0e5896a49aa2e1cdd2434ccb4b", ndcg: 0.2139339579408601 },
    ];
    for (const { lambda, beta, b, ndcg } of before) {
      const out = path.join(root, `fixed-${lambda}`);
      const params = resolveRankParams({ rank_lambda: lambda, rank_popularity_penalty: beta, rank_max_items: 120 });
      const result = await rank({ ratings }, params, out);
      expect(
        createHash("sha256")
          .update(await readFile(path.join(out, RANKER_FILES.values)))
          .digest("hex"),
      ).toBe(b);
      expect(result.metrics.ndcg_at_10).toBe(ndcg);
      expect(result.manifest.details).toMatchObject({ lambda, popularityPenalty: beta });
      expect(result.manifest.details.selection).toBeUndefined();
      expect(result.metrics).toMatchObject({ rank_lambda_chosen: lambda, rank_penalty_chosen: beta });
      expect(result.metrics.select_seconds).toBeUndefined();
    }
  }, 60_000);

  it("with auto, chooses λ and β on held-out training rows and records the trials", async () => {
    const lines = new PassThrough();
    const logged: string[] = [];
    lines.on("data", (chunk: Buffer) => logged.push(...chunk.toString().split("\n").filter(Boolean)));
    const out = path.join(root, "auto");
    const result = await rank({ ratings }, resolveRankParams({ rank_max_items: 120 }), out, {
      logger: createLogger({ destination: lines, level: "info" }),
    });
    const { details, params } = result.manifest;
    expect(params).toMatchObject({ rank_lambda: "auto", rank_popularity_penalty: "auto" });
    const selection = details.selection;
    expect(selection?.trials).toHaveLength(AUTO_LAMBDAS.length * AUTO_PENALTIES.length + 1);
    const chosen = selection?.trials[selection.chosen];
    expect(chosen).toMatchObject({ model: "ease", lambda: details.lambda, penalty: details.popularityPenalty });
    expect(AUTO_LAMBDAS).toContain(details.lambda);
    expect(AUTO_PENALTIES).toContain(details.popularityPenalty);
    expect(result.metrics).toMatchObject({ rank_lambda_chosen: details.lambda, rank_penalty_chosen: details.popularityPenalty });
    expect(result.metrics.rank_validation_ndcg_at_10).toBeCloseTo(chosen?.ndcg ?? -1, 4);
    expect(details.seconds.select).toBeGreaterThan(0);
    const line = logged.map((l) => JSON.parse(l) as { msg: string; lambda?: number }).find((l) => l.msg.startsWith("rank: auto"));
    expect(line?.lambda).toBe(details.lambda);
    // The chosen pair refitted on the whole training part is the fit that pair gives as numbers.
    const fixed = await rank(
      { ratings },
      resolveRankParams({ rank_max_items: 120, rank_lambda: details.lambda, rank_popularity_penalty: details.popularityPenalty }),
      path.join(root, "auto-as-numbers"),
    );
    expect(fixed.metrics.ndcg_at_10).toBe(result.metrics.ndcg_at_10);
    expect(await readFile(path.join(out, RANKER_FILES.values))).toEqual(
      await readFile(path.join(root, "auto-as-numbers", RANKER_FILES.values)),
    );
  }, 60_000);
});
