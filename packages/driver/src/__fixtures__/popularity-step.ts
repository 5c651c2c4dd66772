/**
 * A small step as a new step package would write it (for the driver's test that a step is its
 * package plus one line of the step list): a popularity model, each movie's mean rating shrunk
 * towards the global mean, fitted on the etl step's "ratings" and published as its own
 * "popularity" kind. Its parameters, key, tracking (entry point included), summary line and bin
 * come from this definition alone.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { buildArtifactDir, defineStep, metricsText, param, splitMask, writeManifest, type ParamDefs } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";

export interface PopularityParams {
  /** Ratings' worth of the global mean added to each movie's mean. */
  popularity_prior: number;
  popularity_seed: number;
  popularity_split_prop: number;
}

const popularityParams: ParamDefs<PopularityParams> = {
  popularity_prior: param.number({ default: 5, min: 0, doc: "ratings' worth of the global mean each movie's mean is shrunk towards" }),
  popularity_seed: param.integer({ default: 42, doc: "the train/test split" }),
  popularity_split_prop: param.number({
    default: 0.8,
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
    doc: "share of ratings in the training part",
  }),
};

export const POPULARITY_FILE = "popularity.json";

/** Per-movie shrunk means from the training rows, and the RMSE of predicting the test rows with them. */
function fit(r: { movieIds: Int32Array; userIds: Int32Array; ratings: Float32Array; rows: number }, p: PopularityParams) {
  const mask = splitMask(r.userIds, r.movieIds, p.popularity_seed, p.popularity_split_prop);
  const sums = new Map<number, { sum: number; n: number }>();
  let total = 0;
  let count = 0;
  for (let i = 0; i < r.rows; i++) {
    if (!mask[i]) continue;
    const s = sums.get(r.movieIds[i]) ?? { sum: 0, n: 0 };
    s.sum += r.ratings[i];
    s.n += 1;
    sums.set(r.movieIds[i], s);
    total += r.ratings[i];
    count += 1;
  }
  const mean = total / count;
  const score = new Map([...sums].map(([movie, s]) => [movie, (s.sum + p.popularity_prior * mean) / (s.n + p.popularity_prior)]));
  let se = 0;
  let tested = 0;
  for (let i = 0; i < r.rows; i++) {
    if (mask[i]) continue;
    se += ((score.get(r.movieIds[i]) ?? mean) - r.ratings[i]) ** 2;
    tested += 1;
  }
  return { mean, score, test_rmse: Math.sqrt(se / tested) };
}

export const popularityStep = defineStep({
  name: "popularity",
  // Its child run's name and entry point tag, and its words on `ms run`'s summary line.
  entryPoint: "train_popularity",
  headline: (metrics) => `${metricsText(metrics, ["test_rmse", "movies"])} (shrunk means)`,
  code: { package: "@ms/contracts", version: "0.1.0" },
  params: popularityParams,
  inputs: { ratings: "ratings" },
  outputs: { model: "popularity" },
  async run(ctx, inputs, params, outDir) {
    const ratings = await readRatingsColumns(inputs.ratings.dir);
    const model = fit(ratings, params);
    const metrics = { movies: model.score.size, test_rmse: model.test_rmse };
    await buildArtifactDir(outDir, async (staging) => {
      await fs.writeFile(
        path.join(staging, POPULARITY_FILE),
        JSON.stringify({ mean: model.mean, movies: Object.fromEntries(model.score) }) + "\n",
      );
      return writeManifest(staging, {
        kind: "popularity",
        files: [POPULARITY_FILE],
        params,
        metrics,
        details: {},
        producedBy: { step: "popularity", version: "0.1.0" },
      });
    });
    for (const [key, value] of Object.entries(metrics)) ctx.metrics?.metric(key, value);
  },
});
