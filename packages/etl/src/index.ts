/**
 * @ms/etl: MovieLens datasets (download, local mirror, synthetic) and the etl step that turns a
 * ratings file into Parquet, plus the fast Parquet -> typed columns reader later steps use.
 */
export { etl, RATINGS_SCHEMA, type EtlInputs, type EtlOutputs, type EtlMetrics, type RatingsDetails, type RatingsManifest } from "./etl.js";
export {
  readRatingsColumns,
  writeRatingsColumns,
  resolveRatingsFile,
  RATINGS_FILE,
  withDuckDB,
  sqlString,
  duckVectorItems,
  type RatingsColumns,
} from "./adapter.js";
export { detectFormat, parseFormat, describeFormat, RATINGS_FORMATS, CSV_HEADER, type RatingsFormat, type FormatInfo } from "./formats.js";
export {
  writeSyntheticRatings,
  syntheticShape,
  SYNTHETIC_DEFAULTS,
  SYNTHETIC_KINDS,
  type SyntheticKind,
  type SyntheticOptions,
} from "./synthetic.js";
export { ETL_VERSION } from "./version.js";
export {
  loadRawData,
  defaultCacheDir,
  MOVIELENS_DATASETS,
  DATASET_NAMES,
  GROUPLENS_BASE_URL,
  type DatasetSpec,
  type LoadRawDataParams,
  type RawDataset,
} from "./datasets.js";
export { extractZip, unsafeEntryReason, DEFAULT_MAX_EXTRACT_BYTES } from "./archive.js";
export { downloadStep, etlStep, readRawDataset, writeRawDataset, SOURCE_FILE, type RawDatasetDetails } from "./step.js";
export {
  downloadParams,
  etlParams,
  resolveDownloadParams,
  resolveEtlParams,
  ETL_DEFAULTS,
  type DownloadParams,
  type EtlParams,
} from "./params.js";
export { cleanPartialDownloads } from "./datasets.js";
export { DOWNLOAD_DEFAULTS, type FetchOptions } from "./download.js";
export { DEFAULT_MAX_ENTRIES, type ExtractOptions } from "./archive.js";
export { MAX_LINE_BYTES } from "./formats.js";
export { ratingsTable, type RatingsTable } from "./arrow.js";
export { readMovieTitles, parseMovies, MOVIES_FILES, type MovieTitles } from "./movies.js";
