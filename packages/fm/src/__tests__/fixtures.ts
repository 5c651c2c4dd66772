/**
 * Test fixtures: small generated ratings with known structure (biases plus a rank-3 product),
 * written through the real etl step, and the real als step's factors fitted on them: what the fm
 * step reads in the pipeline.
 */
import { als, resolveAlsParams } from "@ms/als";
import { mulberry32 } from "@ms/contracts";
import { etl, resolveEtlParams } from "@ms/etl";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface Fixture {
  root: string;
  ratingsDir: string;
  /** The same ratings without their timestamp column (etl_keep_timestamp=false). */
  untimedRatingsDir: string;
  factorsDir: string;
  rows: number;
}

/** r = 3.5 + b_u + b_m + <p_u, q_m> + N(0, 0.3^2), clipped to [0.5, 5]; each user rates `perUser` movies. */
function csvOf(users: number, movies: number, perUser: number, seed: number): { text: string; rows: number } {
  const random = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
  const P = Array.from({ length: users * 3 }, () => 0.5 * gauss());
  const Q = Array.from({ length: movies * 3 }, () => 0.5 * gauss());
  const bu = Array.from({ length: users }, () => 0.3 * gauss());
  const bm = Array.from({ length: movies }, () => 0.3 * gauss());
  const lines = ["userId,movieId,rating,timestamp"];
  for (let u = 0; u < users; u++) {
    const seen = new Set<number>();
    for (let k = 0; k < perUser; k++) {
      const m = Math.floor(random() * movies);
      if (seen.has(m)) continue;
      seen.add(m);
      let r = 3.5 + bu[u] + bm[m] + 0.3 * gauss();
      for (let f = 0; f < 3; f++) r += P[u * 3 + f] * Q[m * 3 + f];
      lines.push(`${u + 1},${7 * m + 2},${Math.min(5, Math.max(0.5, Math.round(r * 2) / 2))},${1_000_000 + lines.length}`);
    }
  }
  return { text: lines.join("\n") + "\n", rows: lines.length - 1 };
}

/** Ratings (etl output) and factors (als output) under a new temporary directory. */
export async function writeFixture(options: { users?: number; movies?: number; perUser?: number; seed?: number } = {}): Promise<Fixture> {
  const { users = 60, movies = 40, perUser = 20, seed = 1 } = options;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "ms-fm-"));
  const csv = path.join(root, "ratings.csv");
  const { text, rows } = csvOf(users, movies, perUser, seed);
  await fs.writeFile(csv, text);
  const ratingsDir = path.join(root, "etl");
  await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), ratingsDir);
  const untimedRatingsDir = path.join(root, "etl-untimed");
  await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, etl_keep_timestamp: "false" }), untimedRatingsDir);
  const factorsDir = path.join(root, "als");
  await als({ ratings: ratingsDir }, resolveAlsParams({ als_rank: 3, als_max_iter: 4, seed: 5, als_num_threads: 1 }), factorsDir);
  return { root, ratingsDir, untimedRatingsDir, factorsDir, rows };
}
