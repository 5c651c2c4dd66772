/**
 * Input checks of the dataset and logged-model calls (MLflow's limits from
 * mlflow/utils/validation.py), applied once by `ValidatingTracker` as the others in validation.ts.
 */
import { BadParameterError } from "@ms/contracts";
import type { DatasetInput } from "./types.js";

/** MLflow's limits for a dataset's fields. */
export const DATASET_LIMITS = { name: 500, digest: 36, source: 65_535, schema: 1_048_575, profile: 16_777_215, perBatch: 1000 } as const;

const MODEL_ID = /^m-[0-9a-f]{32}$|^[a-zA-Z0-9][\w-]{0,255}$/;

function text(dataset: number, field: string, value: unknown, limit: number, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== "string" || value === "") throw new BadParameterError(`datasets[${dataset}].${field}`, "must be a non-empty string");
  if (value.length > limit)
    throw new BadParameterError(`datasets[${dataset}].${field}`, `is ${value.length} characters, over MLflow's limit of ${limit}`);
  return value;
}

function json(dataset: number, field: string, value: string | undefined): void {
  if (value === undefined) return;
  try {
    JSON.parse(value);
  } catch {
    throw new BadParameterError(`datasets[${dataset}].${field}`, "must be JSON text");
  }
}

export function validateDatasets(datasets: readonly DatasetInput[]): DatasetInput[] {
  if (!Array.isArray(datasets)) throw new BadParameterError("datasets", "must be an array of { name, digest, sourceType, source, ... }");
  if (datasets.length > DATASET_LIMITS.perBatch)
    throw new BadParameterError("datasets", `at most ${DATASET_LIMITS.perBatch} datasets in one call, got ${datasets.length}`);
  return datasets.map((d, i) => {
    const out: DatasetInput = {
      name: text(i, "name", d.name, DATASET_LIMITS.name) as string,
      digest: text(i, "digest", d.digest, DATASET_LIMITS.digest) as string,
      sourceType: text(i, "sourceType", d.sourceType, DATASET_LIMITS.name) as string,
      source: text(i, "source", d.source, DATASET_LIMITS.source) as string,
    };
    const schema = text(i, "schema", d.schema, DATASET_LIMITS.schema, true);
    const profile = text(i, "profile", d.profile, DATASET_LIMITS.profile, true);
    const context = text(i, "context", d.context, 8000, true);
    json(i, "source", out.source);
    json(i, "schema", schema);
    json(i, "profile", profile);
    return { ...out, ...(schema ? { schema } : {}), ...(profile ? { profile } : {}), ...(context ? { context } : {}) };
  });
}

export function validateModelId(modelId: unknown): string {
  if (typeof modelId !== "string" || !MODEL_ID.test(modelId))
    throw new BadParameterError("modelId", `${JSON.stringify(modelId)} is not a model id`);
  return modelId;
}

/** A logged model's name: MLflow's limit for names, no '/' (it names an artifact path of runs:/ URIs). */
export function validateModelName(name: unknown): string {
  if (typeof name !== "string" || name === "" || name.length > 500 || name.includes("/") || name.includes(":"))
    throw new BadParameterError("model name", `${JSON.stringify(name)} must be 1-500 characters without '/' or ':'`);
  return name;
}
