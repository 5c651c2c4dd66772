/**
 * The download and etl steps' parameter schemas: the one place each parameter is declared, under
 * its one name (the seed MLproject's `-P` name), with its default, range and doc, and their
 * resolvers (`resolveDownloadParams`, `resolveEtlParams`) for the steps, the bin and library callers.
 */
import { BadParameterError, checkTestRatings, param, paramResolver, pickSplitParams, type ParamDefs, type SplitKind } from "@ms/contracts";
import { DATASET_NAMES } from "./datasets.js";
import { parseColumnMapping, RATINGS_FORMATS, type RatingsFormat } from "./formats.js";
import { SYNTHETIC_DEFAULTS, SYNTHETIC_KINDS, type SyntheticKind } from "./synthetic.js";

export interface DownloadParams {
  dataset: string;
  /** A ratings file of the user's instead of a dataset. */
  ratings_csv?: string;
  /** A mirror holding `<dataset>/ratings.csv` (the driver passes `MS_DATASETS_DIR` here). */
  data_dir?: string;
  /** Any MovieLens-layout zip to download instead of a dataset. */
  url?: string;
  /** Synthetic data only. */
  synthetic_rows: number;
  synthetic_seed: number;
  /** With split=file: the test ratings file, recorded (digest, identity) beside the main one. */
  test_ratings?: string;
  synthetic_kind: SyntheticKind;
}

export const downloadParams: ParamDefs<DownloadParams> = {
  dataset: param.string({ default: "ml-latest-small", doc: `a MovieLens release or synthetic (${DATASET_NAMES.join(", ")})` }),
  ratings_csv: param.path({
    defaultDoc: "none: the dataset is used",
    doc: "a local ratings file instead of a dataset (ratings.csv, ratings.dat or u.data)",
  }),
  data_dir: param.path({ defaultDoc: "$MS_DATASETS_DIR (ms run)", doc: "a mirror holding <dataset>/ratings.csv" }),
  url: param.string({
    defaultDoc: "none: the dataset is used",
    doc: "any MovieLens-layout zip to download instead of a dataset (checked against <url>.md5 when the server has one)",
  }),
  synthetic_rows: param.integer({ default: SYNTHETIC_DEFAULTS.rows, min: 1, doc: "ratings to generate for --dataset synthetic" }),
  synthetic_seed: param.integer({ default: SYNTHETIC_DEFAULTS.seed, doc: "seed of the synthetic generator" }),
  ...pickSplitParams("test_ratings"),
  synthetic_kind: param.choice(SYNTHETIC_KINDS, {
    default: SYNTHETIC_DEFAULTS.kind,
    doc: "how synthetic ratings are built: lowrank (low rank + biases + noise), drift (biases drifting with time, day effects), powerlaw (heavy tails; who rated what tells how), taste (lowrank whose exposure follows taste: what a user rated says what they like)",
  }),
};

/** One source at a time, and a dataset that exists when no file or URL replaces it. */
export function checkDownloadParams(p: DownloadParams): DownloadParams {
  if (p.url && p.ratings_csv) throw new BadParameterError("url", "give either url or ratings_csv, not both");
  if (!p.ratings_csv && !p.url && !DATASET_NAMES.includes(p.dataset))
    throw new BadParameterError("dataset", `unknown dataset "${p.dataset}"; known: ${DATASET_NAMES.join(", ")}`);
  return p;
}

export const resolveDownloadParams = paramResolver(downloadParams, checkDownloadParams);

export interface EtlParams {
  /** Keep the first N rows in file order; -1 keeps all (the seed's default is 100000). */
  max_row_limit: number;
  /** `auto` keeps the timestamp column when the file has one; `true` requires it; `false` drops it (split=time keeps it anyway). */
  etl_keep_timestamp: "auto" | "true" | "false";
  /** `latest` keeps the newest rating of each (user, movie) pair. */
  etl_dedupe: "off" | "latest";
  /** Force a format instead of detecting it. */
  etl_format?: RatingsFormat;
  /** `userId=uid,movieId=iid,rating=stars`: the header names of a CSV whose columns are not spelled as etl knows them. */
  etl_columns?: string;
  /** file and time write the `split_key` column (and keep timestamps); the others need nothing of etl. */
  split: SplitKind;
  test_ratings?: string;
}

export const ETL_DEFAULTS: Readonly<EtlParams> = { max_row_limit: 100_000, etl_keep_timestamp: "auto", etl_dedupe: "off", split: "hash" };

const { split, test_ratings } = pickSplitParams("split", "test_ratings");

export const etlParams: ParamDefs<EtlParams> = {
  max_row_limit: param.integer({
    default: ETL_DEFAULTS.max_row_limit,
    min: -1,
    doc: "keep the first N rows in file order; -1 keeps all (0 is refused)",
  }),
  etl_keep_timestamp: param.choice(["auto", "true", "false"] as const, {
    default: ETL_DEFAULTS.etl_keep_timestamp,
    doc: "keep the timestamp column: auto when the file has one (time features and split=time read it), true requires it, false drops it",
  }),
  etl_dedupe: param.choice(["off", "latest"] as const, {
    default: ETL_DEFAULTS.etl_dedupe,
    doc: "latest keeps the newest rating of each (user, movie) pair",
  }),
  etl_format: param.choice(RATINGS_FORMATS, {
    defaultDoc: "detected from the file",
    doc: "force a ratings format instead of detecting it",
  }),
  etl_columns: param.string({
    defaultDoc: "from the CSV header: user/user_id/userId, item/item_id/movie/movie_id/movieId, rating, timestamp (optional), any case",
    doc: "the CSV header's name for each column, e.g. userId=uid,movieId=iid,rating=stars",
  }),
  split,
  test_ratings: { ...test_ratings, notInKey: "its content is in the download step's record, which is etl's input" },
};

/** 0 rows is not a limit the range can exclude (-1 and 1 are both valid); a column mapping must parse; a test file goes with split=file. */
export function checkEtlParams(p: EtlParams): EtlParams {
  if (p.max_row_limit === 0) throw new BadParameterError("max_row_limit", "must be a positive integer or -1 (all rows), got 0");
  parseColumnMapping(p.etl_columns);
  return checkTestRatings(p);
}

export const resolveEtlParams = paramResolver(etlParams, checkEtlParams);
