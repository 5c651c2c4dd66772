/**
 * Predictions as an Apache Arrow table, built zero-copy: the `prediction` column's buffer is the
 * Float32Array `predict` returns. apache-arrow takes ~0.2 s to import, so it is loaded on first
 * use, never by `import "@ms/keras"`.
 */
import type { Float32, Table } from "apache-arrow";
import { predict, type LoadedModel } from "./keras.js";

/** One `prediction` FLOAT column, one row per feature row. */
export type PredictionTable = Table<{ prediction: Float32 }>;

/** Wraps predictions (any Float32Array) as a table sharing their buffer. */
export async function predictionTable(predictions: Float32Array): Promise<PredictionTable> {
  const arrow = await import("apache-arrow");
  return new arrow.Table({ prediction: arrow.makeVector(predictions) }) as PredictionTable;
}

/** `predict` as an Arrow table: predicted ratings for a row-major feature matrix (`n * inputWidth` floats). */
export async function predictTable(loaded: LoadedModel, features: Float32Array): Promise<PredictionTable> {
  return predictionTable(await predict(loaded, features));
}
