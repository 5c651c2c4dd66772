/**
 * All of @ms/rank's file I/O: the "ranker" artifact, written and read here and nowhere else, and
 * the etl ratings read through @ms/etl. The artifact holds the training items (`item_ids.bin`,
 * int32 ascending) and their training counts (`train_counts.bin`, int32); for EASE also the model's
 * items (`model_items.bin`, int32 positions into item_ids) and B's kept entries as sparse rows
 * (`b_offsets.bin` int32, m + 1; `b_cols.bin` int32 and `b_values.bin` float32, one per entry).
 * Every size is recorded in the manifest's details and checked on reading, values are refused when
 * not finite, and a bad file is a CorruptArtifactError naming it.
 */
import {
  asStorageError,
  buildArtifactDir,
  CorruptArtifactError,
  DigestSchema,
  digestFile,
  Fields,
  MissingArtifactError,
  readManifest,
  SplitSpecSchema,
  writeManifest,
  type Digest,
  type Manifest,
  type ManifestMetrics,
  type ProducedBy,
  type SplitSpec,
} from "@ms/contracts";
import { promises as fs } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import type { RankerModel } from "./ranker.js";
import { RANK_MODELS } from "./params.js";

export const RANKER_KIND = "ranker";
export const RANKER_FILES = {
  itemIds: "item_ids.bin",
  trainCounts: "train_counts.bin",
  modelItems: "model_items.bin",
  offsets: "b_offsets.bin",
  cols: "b_cols.bin",
  values: "b_values.bin",
} as const;

/** What the ranker's manifest details hold. */
export interface RankerDetails {
  model: (typeof RANK_MODELS)[number];
  /** Training items, model items (ease; 0 for popularity) and B's kept entries. */
  items: number;
  modelItems: number;
  entries: number;
  /** The λ fitted (with `auto`, the chosen one; 0 for popularity with `auto`). */
  lambda: number;
  neighbors: number;
  /** β: B's columns divided by the item's training count^β. */
  popularityPenalty: number;
  trainRows: number;
  split: SplitSpec;
  ratings: { digest: Digest; rows: number };
  /** What the fit took: the gram matrix, the inverse, cutting B's rows; with `auto`, the selection before it. */
  seconds: { gram: number; inverse: number; prune: number; select?: number };
  /** With `auto` λ or β: the held-out trials and the choice (select.ts). */
  selection?: {
    rule: string;
    fitRows: number;
    validationRows: number;
    users: number;
    chosen: number;
    popularityBest: boolean;
    trials: { model: "ease" | "popularity"; lambda: number; penalty: number; ndcg: number; coverage: number; se: number }[];
  };
}

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const seconds = v.pipe(v.number(), v.minValue(0));

export const RankerDetailsSchema = v.object({
  model: v.picklist(RANK_MODELS),
  items: count,
  modelItems: count,
  entries: count,
  lambda: v.pipe(v.number(), v.minValue(0)),
  neighbors: count,
  popularityPenalty: v.pipe(v.number(), v.minValue(0)),
  trainRows: count,
  split: SplitSpecSchema,
  ratings: v.object({ digest: DigestSchema, rows: count }),
  seconds: v.object({ gram: seconds, inverse: seconds, prune: seconds, select: v.optional(seconds) }),
  selection: v.optional(
    v.object({
      rule: v.string(),
      fitRows: count,
      validationRows: count,
      users: count,
      chosen: v.pipe(v.number(), v.integer(), v.minValue(-1)),
      popularityBest: v.boolean(),
      trials: v.array(
        v.object({
          model: v.picklist(RANK_MODELS),
          lambda: v.pipe(v.number(), v.minValue(0)),
          penalty: v.pipe(v.number(), v.minValue(0)),
          ndcg: v.number(),
          coverage: v.number(),
          se: v.number(),
        }),
      ),
    }),
  ),
}) satisfies v.GenericSchema<unknown, RankerDetails>;

export interface RankerArtifactInput<P> {
  model: RankerModel;
  details: RankerDetails;
  params: P;
  metrics: ManifestMetrics;
  producedBy: ProducedBy;
}

async function writeArray(dir: string, rel: string, a: ArrayBufferView): Promise<void> {
  const file = path.join(dir, rel);
  try {
    await fs.writeFile(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  } catch (error) {
    throw asStorageError(error, file);
  }
}

/** Publishes the ranker artifact at `outDir` (staged beside it, renamed into place). */
export async function writeRankerArtifact<P>(
  outDir: string,
  input: RankerArtifactInput<P>,
): Promise<Manifest<P, ManifestMetrics, RankerDetails>> {
  const { model } = input;
  if (model.rows)
    for (const x of model.rows.values)
      if (!Number.isFinite(x)) throw new Error("rank: B holds a non-finite value; nothing non-finite is published");
  return buildArtifactDir(path.resolve(outDir), async (staging) => {
    const files: [string, ArrayBufferView][] = [
      [RANKER_FILES.itemIds, model.itemIds],
      [RANKER_FILES.trainCounts, model.trainCounts],
    ];
    if (model.modelItems && model.rows)
      files.push(
        [RANKER_FILES.modelItems, model.modelItems],
        [RANKER_FILES.offsets, model.rows.offsets],
        [RANKER_FILES.cols, model.rows.cols],
        [RANKER_FILES.values, model.rows.values],
      );
    for (const [rel, a] of files) await writeArray(staging, rel, a);
    return writeManifest(staging, {
      kind: RANKER_KIND,
      files: files.map(([rel]) => rel),
      params: input.params,
      metrics: input.metrics,
      details: input.details,
      producedBy: input.producedBy,
    });
  });
}

/** Reads `rel` as `length` values of Int32 or Float32; a missing file or a size the manifest does not give is named. */
async function readArray<T extends Int32Array | Float32Array>(
  dir: string,
  rel: string,
  Ctor: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
  length: number,
): Promise<T> {
  const file = path.join(dir, rel);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new MissingArtifactError(`${file}: missing (part of the ranker artifact)`);
    throw asStorageError(error, file);
  }
  if (bytes.byteLength !== length * Ctor.BYTES_PER_ELEMENT)
    throw new CorruptArtifactError(
      `${file}: ${bytes.byteLength} bytes, the manifest says ${length} values (${length * Ctor.BYTES_PER_ELEMENT} bytes)`,
    );
  // A copy into an aligned buffer: a Buffer from the pool may start at any offset.
  return new Ctor(new Uint8Array(bytes).buffer);
}

/** Checks that every value lies in [0, bound) and, when `ascending`, strictly increases; names the file otherwise. */
function checkIndices(a: Int32Array, bound: number, file: string, ascending: boolean): void {
  for (let i = 0; i < a.length; i++) {
    if (a[i] < 0 || a[i] >= bound) throw new CorruptArtifactError(`${file}: value ${i} is ${a[i]}, outside 0..${bound - 1}`);
    if (ascending && i > 0 && a[i] <= a[i - 1]) throw new CorruptArtifactError(`${file}: value ${i} (${a[i]}) does not increase`);
  }
}

export interface RankerArtifact {
  dir: string;
  manifest: Manifest<Record<string, unknown>, ManifestMetrics, RankerDetails>;
  model: RankerModel;
}

/** Loads a ranker artifact directory and checks every file against its manifest. */
export async function readRankerArtifact(dir: string): Promise<RankerArtifact> {
  const abs = path.resolve(dir);
  const manifest = await readManifest(abs, RANKER_KIND, {
    params: Fields,
    metrics: v.record(v.string(), v.nullable(v.number())),
    details: RankerDetailsSchema,
  });
  const d = manifest.details;
  const at = (rel: string) => path.join(abs, rel);
  const itemIds = await readArray(abs, RANKER_FILES.itemIds, Int32Array, d.items);
  for (let i = 1; i < itemIds.length; i++)
    if (itemIds[i] <= itemIds[i - 1]) throw new CorruptArtifactError(`${at(RANKER_FILES.itemIds)}: ids not ascending at ${i}`);
  const trainCounts = await readArray(abs, RANKER_FILES.trainCounts, Int32Array, d.items);
  const model: RankerModel = { model: d.model, itemIds, trainCounts };
  if (d.model !== "ease") return { dir: abs, manifest, model };
  const modelItems = await readArray(abs, RANKER_FILES.modelItems, Int32Array, d.modelItems);
  checkIndices(modelItems, d.items, at(RANKER_FILES.modelItems), true);
  const offsets = await readArray(abs, RANKER_FILES.offsets, Int32Array, d.modelItems + 1);
  if (offsets[0] !== 0 || offsets[d.modelItems] !== d.entries)
    throw new CorruptArtifactError(`${at(RANKER_FILES.offsets)}: does not span 0..${d.entries}`);
  for (let i = 1; i < offsets.length; i++)
    if (offsets[i] < offsets[i - 1]) throw new CorruptArtifactError(`${at(RANKER_FILES.offsets)}: offset ${i} decreases`);
  const cols = await readArray(abs, RANKER_FILES.cols, Int32Array, d.entries);
  checkIndices(cols, d.modelItems, at(RANKER_FILES.cols), false);
  const values = await readArray(abs, RANKER_FILES.values, Float32Array, d.entries);
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]))
      throw new CorruptArtifactError(`${at(RANKER_FILES.values)}: value ${i} is ${values[i]}; the ranker holds finite numbers only`);
  return { dir: abs, manifest, model: { ...model, modelItems, rows: { offsets, cols, values } } };
}

/** The etl ratings as typed columns (loaded on first use: @ms/etl loads DuckDB). */
export async function readRatings(pathOrDir: string) {
  const { readRatingsColumns } = await import("@ms/etl");
  return readRatingsColumns(pathOrDir);
}

/** The etl artifact's digest (or the bare file's sha256) and what etl recorded of its split. */
export async function ratingsSource(pathOrDir: string): Promise<{ digest: Digest; file: string; writtenSplit: unknown }> {
  const { resolveRatingsFile } = await import("@ms/etl");
  const { file, manifest } = await resolveRatingsFile(pathOrDir);
  const digest = manifest?.digest ?? (await digestFile(file)).digest;
  return { digest, file, writtenSplit: manifest?.params.split };
}
