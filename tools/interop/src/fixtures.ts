/**
 * The artifacts under test, made by our own steps: synthetic MovieLens-shaped ratings through the
 * etl step, then the als step on them, in a temporary directory the caller removes.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { als } from "@ms/als";
import { etl, writeSyntheticRatings } from "@ms/etl";

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
  await etl({ ratingsCsv: csv }, { maxRowLimit: -1 }, ratingsDir);
  const factorsDir = path.join(root, "factors");
  await als({ ratings: ratingsDir }, { rank: 8, maxIter: 5, seed: 7, numThreads: 2 }, factorsDir);
  return { root, ratingsDir, ratingsFile: path.join(ratingsDir, "ratings.parquet"), factorsDir };
}
