/**
 * What the keras step takes and publishes: its inputs, metrics, and the keras-model manifest's
 * details (the split, the feature set, the training history, the ratings and factors it used).
 */
import type { ArtifactRef, Digest, Manifest, SplitSpec } from "@ms/contracts";
import type { StackedTablesLayout } from "./adapter.js";
import type { BackendName } from "./backend.js";
import type { TablesRecord } from "@ms/fm";
import type { FeatureSet } from "./features.js";
import type { KerasParams } from "./params.js";

export interface KerasInputs {
  /** The etl output directory or its ratings.parquet. */
  ratings: string;
  /** The als output directory (factors artifact). */
  factors: string;
  /** The fm output directory (its out-of-fold features): needed by keras_features=stacked. */
  features?: string;
}

export interface KerasMetrics {
  /** Also `best_epoch`, with keras_restore_best: the 1-based epoch whose weights were kept. */
  [key: string]: number;
  training_nrows: number;
  test_nrows: number;
  validation_nrows: number;
  train_mse: number;
  test_mse: number;
  test_rmse: number;
  /** Test rows whose user or movie has no factors (split=file: scored by the cold-start rule; else left out of test_mse). */
  test_cold_rows: number;
  dropped_no_factors: number;
  epochs_run: number;
  seconds: number;
}

export interface KerasDetails {
  backend: BackendName;
  rank: number;
  inputWidth: number;
  features: FeatureSet;
  /** The stacked feature columns, in input order. */
  columns?: string[];
  /**
   * Stacked features: the out-of-fold model, and the full fit's tables (for scoring new pairs), as
   * the fm artifact holds them (`tables/<field>.bin`); models from before the fm step kept one flat
   * file (`file`, `layout`).
   */
  stacked?: { model: "bayes" | "als"; tables?: TablesRecord; file?: string; layout?: StackedTablesLayout };
  /** The fm artifact the stacked features came from. */
  fm?: { digest: Digest };
  /** The evaluation split, as the als manifest recorded it. */
  split: SplitSpec;
  validation: "tail";
  history: { epoch: number; loss: number; val_loss?: number }[];
  factors: { digest: Digest };
  /** `digest`: the ratings given (their artifact digest, or the file's sha256 for a bare Parquet file). */
  ratings: { rows: number; droppedTrain: number; droppedTest: number; digest: Digest };
}

export type KerasManifest = Manifest<KerasParams, KerasMetrics, KerasDetails>;

export interface KerasOutputs {
  [name: string]: ArtifactRef<"keras-model">;
  model: ArtifactRef<"keras-model">;
}
