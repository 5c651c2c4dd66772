/**
 * The ranking step's artifact: `ranking.json` (every model's metrics, the evaluation's settings,
 * the sample users the report shows, and notes on models left out) beside its manifest, whose
 * metrics are the flat `<model>_<metric>_at_<k>` numbers the driver logs. Read back through a
 * valibot schema: the report trusts nothing it did not check.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { buildArtifactDir, parseJsonFile, readManifest, writeManifest, type Manifest, type ProducedBy } from "@ms/contracts";

export const RANKING_KIND = "ranking";
export const RANKING_FILE = "ranking.json";

const finite = v.pipe(v.number(), v.finite());

const ModelRankingSchema = v.object({
  model: v.string(),
  ndcg: finite,
  precision: finite,
  recall: finite,
  map: finite,
  hitRate: finite,
  coverage: finite,
  popularityBias: finite,
  /** Seconds spent scoring and ranking every evaluated user. */
  seconds: finite,
});

const MovieSchema = v.object({ movieId: v.number(), title: v.nullable(v.string()) });

const SampleSchema = v.object({
  userId: v.number(),
  /** The user's training ratings. */
  rated: v.number(),
  /** The default recommender's top list, best first. */
  recommendations: v.array(v.object({ ...MovieSchema.entries, score: finite, relevant: v.boolean() })),
  /** The user's own highest-rated training movies, best first. */
  favourites: v.array(v.object({ ...MovieSchema.entries, rating: finite })),
});

/** `ranking.json`. */
export const RankingFileSchema = v.object({
  k: v.number(),
  minRating: v.number(),
  /** Users evaluated, and those with a relevant test rating before the rank_eval_users cap. */
  users: v.number(),
  eligibleUsers: v.number(),
  catalog: v.number(),
  models: v.array(ModelRankingSchema),
  /** The model the samples show (the default recommender). */
  sampleModel: v.string(),
  samples: v.array(SampleSchema),
  /** Why a model of the run is not in `models`. */
  notes: v.array(v.string()),
});

export type ModelRanking = v.InferOutput<typeof ModelRankingSchema>;
export type RankingSample = v.InferOutput<typeof SampleSchema>;
export type RankingFile = v.InferOutput<typeof RankingFileSchema>;

/** Publishes the artifact at `outDir` (staged beside it; nothing is left on failure). */
export async function writeRankingArtifact<P>(
  outDir: string,
  input: { file: RankingFile; metrics: Record<string, number>; params: P; producedBy: ProducedBy },
): Promise<Manifest<P, Record<string, number>, { k: number; users: number; models: string[] }>> {
  return buildArtifactDir(path.resolve(outDir), async (staging) => {
    await fs.writeFile(path.join(staging, RANKING_FILE), `${JSON.stringify(input.file, null, 2)}\n`);
    return writeManifest(staging, {
      kind: RANKING_KIND,
      files: [RANKING_FILE],
      params: input.params,
      metrics: input.metrics,
      details: { k: input.file.k, users: input.file.users, models: input.file.models.map((m) => m.model) },
      producedBy: input.producedBy,
    });
  });
}

/** Reads a ranking artifact's `ranking.json`, checked (a damaged file is named in the error). */
export async function readRanking(dir: string): Promise<RankingFile> {
  await readManifest(dir, RANKING_KIND);
  return parseJsonFile(path.join(dir, RANKING_FILE), RankingFileSchema);
}
