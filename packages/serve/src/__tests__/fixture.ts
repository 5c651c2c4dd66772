/**
 * Test support: a run's entries without running the pipeline. Factors written by @ms/als's own
 * writer, a ratings entry (twelve ratings of those users and movies, for the cold-start rule), a file tracking store holding a finished
 * `ms run` parent with one child run per entry (tagged with its cache key), and an `EntryStore`
 * over those directories whose answer per key a test can change (missing, damaged).
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { writeFactorsArtifact, type FactorTables } from "@ms/als";
import { RATINGS_FILE, writeRatingsColumns } from "@ms/etl";
import { readManifest, writeManifest, type Digest, type Manifest } from "@ms/contracts";
import { createTracker, TAGS } from "@ms/tracking";
import type { EntryCheck, EntryStore, RunEntry } from "../locate.js";

export interface Fixture {
  root: string;
  mlruns: string;
  factorsDir: string;
  entries: RunEntry[];
  store: EntryStore & { answers: Map<string, EntryCheck> };
  parentRunId: string;
  dispose(): Promise<void>;
}

export const ZERO = `sha256:${"0".repeat(64)}` as Digest;

/** Three users (ids 3, 5, 8) and four movies (10, 20, 30, 40), rank 2. */
export const TABLES: FactorTables = {
  rank: 2,
  userIds: Int32Array.from([3, 5, 8]),
  userFactors: Float32Array.from([1, 0.5, 0.2, 1.5, 2, -1]),
  itemIds: Int32Array.from([10, 20, 30, 40]),
  itemFactors: Float32Array.from([1.5, 1, 0.5, 2, 2, 0, 1, 1]),
};

/** The run's ratings: every user rates every movie but one; the split (random, seed 1, 0.8) keeps most for training. */
export const RATINGS = {
  userIds: Int32Array.from([3, 3, 3, 5, 5, 5, 8, 8, 8, 3, 5, 8]),
  movieIds: Int32Array.from([10, 20, 30, 20, 30, 40, 10, 30, 40, 40, 10, 20]),
  ratings: Float32Array.from([4, 3.5, 5, 2, 1.5, 3, 4.5, 4, 2.5, 3, 5, 1]),
};

async function writeEntries(
  root: string,
): Promise<{ factorsDir: string; list: { step: string; key: string; dir: string; manifest: Manifest }[] }> {
  const ratingsDir = path.join(root, "objects", "k-etl");
  await mkdir(ratingsDir, { recursive: true });
  await writeRatingsColumns(path.join(ratingsDir, RATINGS_FILE), RATINGS);
  const ratings = await writeManifest(ratingsDir, {
    kind: "ratings",
    files: [RATINGS_FILE],
    params: {},
    metrics: {},
    details: {},
    producedBy: { step: "etl", version: "0" },
  });
  const factorsDir = path.join(root, "objects", "k-als");
  const details = {
    rank: 2,
    users: 3,
    items: 4,
    seed: 1,
    splitProp: 0.8,
    coldStartStrategy: "drop" as const,
    ratings: { digest: ZERO, rows: 12 },
  };
  await writeFactorsArtifact(factorsDir, { tables: TABLES, details, params: {}, metrics: {} });
  const factors = await readManifest(factorsDir);
  return {
    factorsDir,
    list: [
      { step: "etl", key: "k-etl", dir: ratingsDir, manifest: ratings },
      { step: "als", key: "k-als", dir: factorsDir, manifest: factors },
    ],
  };
}

/** A finished parent run with a child run per entry, in a file tracking store under `root`. */
export async function trackRun(
  mlruns: string,
  list: readonly { step: string; key: string }[],
): Promise<{ parent: string; children: string[] }> {
  const tracker = createTracker(mlruns, { env: {} });
  const experiment = await tracker.getOrCreateExperiment("Default");
  const tags = { [TAGS.sourceName]: "ms", [TAGS.entryPoint]: "main" };
  const parent = (await tracker.startRun({ experimentId: experiment.experimentId, tags })).runId;
  const children: string[] = [];
  for (const e of list) {
    const child = await tracker.startRun({
      experimentId: experiment.experimentId,
      parentRunId: parent,
      tags: { ...tags, [TAGS.entryPoint]: e.step, [TAGS.step]: e.step, [TAGS.cacheKey]: e.key },
    });
    await tracker.endRun(child.runId, "FINISHED");
    children.push(child.runId);
  }
  await tracker.endRun(parent, "FINISHED");
  return { parent, children };
}

export async function fixture(): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), "ms-serve-"));
  const mlruns = path.join(root, "mlruns");
  const { factorsDir, list } = await writeEntries(root);
  const { parent, children } = await trackRun(mlruns, list);
  const answers = new Map<string, EntryCheck>(list.map((e) => [e.key, { status: "hit", dir: e.dir, manifest: e.manifest }]));
  const store = {
    root: path.join(root, "objects"),
    answers,
    entryDir: (key: string) => path.join(root, "objects", key),
    checkEntry: async (key: string): Promise<EntryCheck> => answers.get(key) ?? { status: "missing" },
  };
  const entries = list.map((e, i) => ({ ...e, runId: children[i] }));
  return { root, mlruns, factorsDir, entries, store, parentRunId: parent, dispose: () => rm(root, { recursive: true, force: true }) };
}
