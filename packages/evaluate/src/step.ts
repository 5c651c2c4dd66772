/**
 * The ranking step: last in the pipeline, it reads the etl ratings (and the download step's raw
 * dataset, for titles), the ALS factors, the fm full fit, the keras network and the ranker, and
 * publishes every model's ranking metrics (`<model>_<metric>_at_<k>`) and the report's sample
 * users. Its parameters are @ms/rank's shared evaluation parameters, so the ranker's own
 * evaluation and this one use one k, one relevance rule and one user sample.
 */
import { defineStep, metricsText, type StepContext } from "@ms/contracts";
import { readMovieTitles, readRawDataset } from "@ms/etl";
import { rankingParams, type RankingParams } from "@ms/rank";
import { writeRankingArtifact, type RankingFile } from "./artifact.js";
import { evaluatedUsers } from "./data.js";
import { rankerLister } from "./ranker.js";
import { kerasLister } from "./keras-lister.js";
import { loadRankingData, measureAll, metricsRecord, scoreLister, type Lister } from "./ranking.js";
import { samples } from "./samples.js";
import { alsScorer, fmScorer, popularityScorer } from "./scorers.js";
import { EVALUATE_VERSION } from "./version.js";

/** The artifact directories the evaluation reads. */
export interface RankingInputs {
  raw: string;
  ratings: string;
  factors: string;
  features: string;
  model: string;
  ranker: string;
}

/** The model whose lists the report's samples show: `ms recommend`'s default. */
export const DEFAULT_RECOMMENDER = "ranker";

async function titlesOf(raw: string): Promise<Map<number, string> | undefined> {
  const record = await readRawDataset(raw);
  return (await readMovieTitles(record.ratingsFile))?.titles;
}

/** Every model, in the order of the metrics and the report's table: the rating models, the ranker, popularity. */
async function listersOf(
  inputs: RankingInputs,
  itemIds: Int32Array,
  trainCount: Int32Array,
  threads: number,
  notes: string[],
  ctx: StepContext,
): Promise<Lister[]> {
  const als = await alsScorer(inputs.factors, itemIds);
  const listers: Lister[] = [scoreLister(als.scorer)];
  try {
    const keras = await kerasLister({ factors: inputs.factors, model: inputs.model }, itemIds, als.factors, threads, notes, ctx.logger);
    if (keras) listers.push(keras);
    const fm = await fmScorer(inputs.features, itemIds, notes);
    if (fm) listers.push(scoreLister(fm));
    return [...listers, await rankerLister(inputs.ranker), scoreLister(popularityScorer(trainCount))];
  } catch (error) {
    // The keras network holds tensors: released when a later model cannot be opened.
    for (const l of listers) l.dispose();
    throw error;
  }
}

/** Measures every model of the run and publishes the ranking artifact at `outDir`. */
export async function evaluateRanking(inputs: RankingInputs, params: RankingParams, outDir: string, ctx: StepContext): Promise<void> {
  const { logger, signal } = ctx;
  const k = params.rank_k;
  const { data: all, split } = await loadRankingData(inputs, params.rank_min_rating);
  const data = evaluatedUsers(all, params.rank_eval_users, split.seed);
  // Each rating model scores users x catalog pairs: what sets the step's time (rank_eval_users bounds it).
  const pairs = data.userIds.length * data.itemIds.length;
  logger.info(
    { users: data.userIds.length, of: all.userIds.length, catalog: data.itemIds.length, pairs, k },
    "ranking: scoring every unseen catalog movie",
  );
  const notes: string[] = [];
  const listers = await listersOf(inputs, data.itemIds, data.trainCount, params.rank_num_threads, notes, ctx);
  try {
    const models = await measureAll(
      listers,
      data,
      k,
      (m) => {
        logger.info({ model: m.model, ndcg: Number(m.ndcg.toFixed(4)), seconds: Number(m.seconds.toFixed(2)) }, `ranking: ${m.model}`);
        ctx.metrics?.metric(`${m.model}_ndcg_at_${k}`, m.ndcg);
      },
      signal,
    );
    const sampler = listers.find((s) => s.model === DEFAULT_RECOMMENDER) ?? listers[0];
    const file: RankingFile = {
      k,
      minRating: params.rank_min_rating,
      users: data.userIds.length,
      eligibleUsers: all.userIds.length,
      catalog: data.itemIds.length,
      models,
      sampleModel: sampler.model,
      samples: await samples(sampler, data, await titlesOf(inputs.raw)),
      notes,
    };
    const metrics = metricsRecord(models, k, data.userIds.length);
    await writeRankingArtifact(outDir, { file, metrics, params, producedBy: { step: "ranking", version: EVALUATE_VERSION } });
  } finally {
    for (const s of listers) s.dispose();
  }
}

export const rankingStep = defineStep({
  name: "ranking",
  code: { package: "@ms/evaluate", version: EVALUATE_VERSION },
  params: rankingParams,
  inputs: { raw: "raw-dataset", ratings: "ratings", factors: "factors", features: "fm", model: "keras-model", ranker: "ranker" },
  outputs: { ranking: "ranking" },
  headline: (metrics) =>
    metricsText(
      metrics,
      Object.keys(metrics).filter((k) => k === "eval_users" || /_ndcg_at_\d+$/.test(k)),
    ),
  async run(ctx, inputs, params, outDir) {
    const { raw, ratings, factors, features, model, ranker } = inputs;
    const dirs = { raw: raw.dir, ratings: ratings.dir, factors: factors.dir, features: features.dir, model: model.dir, ranker: ranker.dir };
    await evaluateRanking(dirs, params, outDir, ctx);
  },
});
