/**
 * The artifacts under test, made by our own steps: synthetic MovieLens-shaped ratings through the
 * etl step, then the als step on them, in a temporary directory the caller removes.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { als, resolveAlsParams } from "@ms/als";
import { etl, resolveEtlParams, writeSyntheticRatings } from "@ms/etl";

export interface Artifacts {
  root: string;
  ratingsDir: string;
  ratingsFile: string;
  factorsDir: string;
}

export async function buildArtifacts(rows = 60_000): Promise<Artifacts> {
  const root = await mkdtemp(path.join(os.tmpdir(), "ms-interop-"));
  const csv = path.join(root, "ratings.csv");
  writeSyntheticRatings(csv, { rows, seed: 7 });
  const ratingsDir = path.join(root, "ratings");
  // The ratings contract's own columns (etl keeps timestamps by default; they are not part of what Spark and pyarrow are checked on).
  await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1, etl_keep_timestamp: "false" }), ratingsDir);
  const factorsDir = path.join(root, "factors");
  await als({ ratings: ratingsDir }, resolveAlsParams({ als_rank: 8, als_max_iter: 5, seed: 7, als_num_threads: 2 }), factorsDir);
  return { root, ratingsDir, ratingsFile: path.join(ratingsDir, "ratings.parquet"), factorsDir };
}
