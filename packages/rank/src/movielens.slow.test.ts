/**
 * The rank step on the real ml-latest-small (MS_MOVIELENS_SMALL, else shared/ beside the
 * repository; skipped only when absent): with the default parameters, EASE beats the popularity
 * baseline on nDCG@10 and precision@10 over the same test users, and covers more of the catalog;
 * `auto` chooses λ and β on at most SELECT_MAX_ITEMS items and the refit covers `rank_max_items`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MOVIELENS_SMALL, movielensSmallDir } from "./__tests__/fixtures.js";
import { resolveRankParams } from "./params.js";
import { rank } from "./rank.js";
import { SELECT_MAX_ITEMS } from "./select.js";

let root: string;
let ratings: string | undefined;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ms-rank-ml-"));
  ratings = await movielensSmallDir(root);
  if (!ratings) console.warn(`skipping the ml-latest-small test: ${MOVIELENS_SMALL} does not exist (set MS_MOVIELENS_SMALL)`);
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("rank on ml-latest-small", () => {
  it("ranks better than popularity with the defaults", async (ctx) => {
    if (!ratings) return ctx.skip();
    const { metrics, manifest } = await rank({ ratings }, resolveRankParams({}), path.join(root, "ranker"));
    // The trials' cap is below the model's: the chosen pair is refitted over every one of its items.
    expect(SELECT_MAX_ITEMS).toBeLessThan(manifest.params.rank_max_items);
    expect(metrics.model_items).toBe(manifest.params.rank_max_items);
    // Refitting the chosen pair given as numbers (no trials) gives the same lists' metrics.
    const lambda = Number(metrics.rank_lambda_chosen);
    const penalty = Number(metrics.rank_penalty_chosen);
    expect(lambda).toBeGreaterThan(0);
    const chosen = resolveRankParams({ rank_lambda: lambda, rank_popularity_penalty: penalty });
    const again = await rank({ ratings }, chosen, path.join(root, "ranker-fixed"));
    expect(again.metrics.ndcg_at_10).toBe(metrics.ndcg_at_10);
    expect(again.metrics.coverage_at_10).toBe(metrics.coverage_at_10);
    expect(metrics.eval_users).toBe(metrics.popularity_eval_users);
    // Every one of the 610 users has test ratings under the hash split.
    expect(metrics.eval_users).toBeGreaterThan(600);
    expect(metrics.ndcg_at_10).toBeGreaterThan(metrics.popularity_ndcg_at_10 as number);
    expect(metrics.precision_at_10).toBeGreaterThan(metrics.popularity_precision_at_10 as number);
    expect(metrics.coverage_at_10).toBeGreaterThan(metrics.popularity_coverage_at_10 as number);
  }, 600_000);
});
