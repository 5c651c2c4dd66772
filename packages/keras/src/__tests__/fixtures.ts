/**
 * Test fixtures: small, deterministic ratings generated from known latent factors, written
 * through the real etl step (ratings.parquet) and @ms/als's real factors writer, so the network
 * has something learnable and the step reads exactly what the pipeline would hand it.
 */
import { writeFactorsArtifact } from "@ms/als";
import { etl, resolveEtlParams } from "@ms/etl";
import { fm, resolveFmParams, type FmParams } from "@ms/fm";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { mulberry32, type FactorMatrices, type RatingColumns } from "../features.js";

export interface FixtureOptions {
  users?: number;
  movies?: number;
  rank?: number;
  /** Probability that a (user, movie) pair is rated. */
  density?: number;
  seed?: number;
  /** Leave the last N users out of the factor files (their ratings must be dropped). */
  usersWithoutFactors?: number;
  splitSeed?: number;
  splitProp?: number;
}

export interface SyntheticData {
  ratings: RatingColumns;
  factors: FactorMatrices;
}

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Ratings = 3.25 + 1.5 * <u, m> + noise, clipped to [0.5, 5] in half stars; movie ids are sparse. */
export function syntheticData(options: FixtureOptions = {}): SyntheticData {
  const { users = 80, movies = 50, rank = 4, density = 0.5, seed = 1, usersWithoutFactors = 0 } = options;
  const random = mulberry32(seed);
  const userFactors = new Float32Array(users * rank).map(() => gaussian(random) * 0.6);
  const itemFactors = new Float32Array(movies * rank).map(() => gaussian(random) * 0.6);
  const u: number[] = [];
  const m: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < users; i++) {
    for (let j = 0; j < movies; j++) {
      if (random() >= density) continue;
      let dot = 0;
      for (let k = 0; k < rank; k++) dot += userFactors[i * rank + k] * itemFactors[j * rank + k];
      const value = Math.min(5, Math.max(0.5, Math.round((3.25 + 1.5 * dot + gaussian(random) * 0.2) * 2) / 2));
      u.push(i + 1);
      m.push(10 * j + 3);
      r.push(value);
    }
  }
  const kept = users - usersWithoutFactors;
  return {
    ratings: { rows: u.length, userIds: Int32Array.from(u), movieIds: Int32Array.from(m), ratings: Float32Array.from(r) },
    factors: {
      rank,
      userIds: Int32Array.from({ length: kept }, (_, i) => i + 1),
      userFactors: userFactors.slice(0, kept * rank),
      itemIds: Int32Array.from({ length: movies }, (_, j) => 10 * j + 3),
      itemFactors,
    },
  };
}

export interface FixtureDirs {
  root: string;
  ratingsDir: string;
  factorsDir: string;
  data: SyntheticData;
}

export async function tempDir(prefix = "ms-keras-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Writes the synthetic data as an etl output directory and an als output directory under `root`. */
export async function writeFixture(root: string, options: FixtureOptions = {}): Promise<FixtureDirs> {
  const data = syntheticData(options);
  const csv = path.join(root, "ratings.csv");
  const lines = ["userId,movieId,rating,timestamp"];
  for (let i = 0; i < data.ratings.rows; i++)
    lines.push(`${data.ratings.userIds[i]},${data.ratings.movieIds[i]},${data.ratings.ratings[i]},${1_000_000 + i}`);
  await fs.writeFile(csv, lines.join("\n") + "\n");
  const ratingsDir = path.join(root, "etl");
  const etlResult = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), ratingsDir);
  const factorsDir = path.join(root, "als");
  await writeFactorsArtifact(factorsDir, {
    tables: data.factors,
    details: {
      rank: data.factors.rank,
      users: data.factors.userIds.length,
      items: data.factors.itemIds.length,
      seed: options.splitSeed ?? 7,
      splitProp: options.splitProp ?? 0.8,
      coldStartStrategy: "drop",
      ratings: { digest: etlResult.manifest.digest, rows: data.ratings.rows },
    },
    params: {},
    metrics: {},
  });
  return { root, ratingsDir, factorsDir, data };
}

/**
 * The fm step's output for a fixture at `out`: small fits by default; `fm_model: "none"` when a
 * test trains on the seed's features and needs the input only.
 */
export async function writeFeatures(fx: FixtureDirs, out: string, params: Partial<FmParams> = {}): Promise<string> {
  const small = { fm_max_samples: 12, fm_burn_in: 3, fm_rank: 3, fm_folds: 3 };
  await fm({ ratings: fx.ratingsDir, factors: fx.factorsDir }, resolveFmParams({ ...small, ...params }), out);
  return out;
}
