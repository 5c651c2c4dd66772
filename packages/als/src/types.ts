/**
 * The factors artifact contract shared with @ms/keras: what an als output directory holds and
 * what `readFactors` returns. Changing a field here changes the contract.
 */
import { DigestSchema, SplitSpecSchema, type Digest, type Manifest, type SplitSpec } from "@ms/contracts";
import * as v from "valibot";

export type ColdStartStrategy = "drop" | "nan";

/** The file names inside a factors artifact directory (Spark ALSModel's factor tables). */
export const FACTORS_FILES = { users: "user_factors.parquet", items: "item_factors.parquet" } as const;

/** Kind-specific facts in the factors manifest; `split` (or, in older manifests, `seed`/`splitProp`: hash) defines the train/test split. */
export interface FactorsDetails {
  rank: number;
  users: number;
  items: number;
  seed: number;
  splitProp: number;
  /** The whole split spec, which every later step reuses; absent in manifests written before the protocols. */
  split?: SplitSpec;
  coldStartStrategy: ColdStartStrategy;
  /**
   * The ratings the factors were fitted on: `digest` is the ratings artifact's digest (or the
   * file's sha256 when ALS was given a bare Parquet file), `fileDigest` the sha256 of the
   * Parquet file itself (absent in manifests written before it was added).
   */
  ratings: { digest: Digest; rows: number; fileDigest?: Digest };
}

/** The split of a factors manifest: its spec, or the hash split of an older manifest's seed and splitProp. */
export function splitOfFactors(details: Pick<FactorsDetails, "seed" | "splitProp" | "split">): SplitSpec {
  return details.split ?? { kind: "hash", seed: details.seed, splitProp: details.splitProp };
}

/** `FactorsDetails` as read from a manifest: what `readFactors` and @ms/keras rely on, checked. */
export const FactorsDetailsSchema = v.looseObject({
  rank: v.pipe(v.number(), v.integer(), v.minValue(1)),
  users: v.pipe(v.number(), v.integer(), v.minValue(0)),
  items: v.pipe(v.number(), v.integer(), v.minValue(0)),
  seed: v.pipe(v.number(), v.integer()),
  splitProp: v.pipe(v.number(), v.gtValue(0), v.ltValue(1)),
  split: v.optional(SplitSpecSchema),
  coldStartStrategy: v.picklist(["drop", "nan"]),
  ratings: v.object({ digest: DigestSchema, rows: v.pipe(v.number(), v.integer(), v.minValue(0)), fileDigest: v.optional(DigestSchema) }),
}) satisfies v.GenericSchema<unknown, FactorsDetails>;

/** Factor matrices as written: ids sorted ascending, factors row-major (`ids.length * rank`). */
export interface FactorTables {
  rank: number;
  userIds: Int32Array;
  userFactors: Float32Array;
  itemIds: Int32Array;
  itemFactors: Float32Array;
}

/** A loaded factors artifact. */
export interface Factors extends FactorTables {
  details: FactorsDetails;
  manifest: Manifest<Record<string, unknown>, Record<string, unknown>, FactorsDetails>;
}
