/**
 * What a run leaves in MLflow besides its runs: the final model as an MLflow Model (@ms/serve's
 * `writeMlflowModel`), logged at artifact path `model` of the step run that produced it and, where
 * the store has MLflow 3's LoggedModel, as one (its artifacts, the run's output, READY); the parent
 * links it with the tag `ms.model.uri`. And the ratings the run trained on as a dataset input of
 * the parent and of the model's run, so MLflow's "Datasets" says what trained it.
 *
 * The final model is the one `ms predict` answers with: the keras network, or the run's ALS model
 * when the network cannot score new pairs (or the run has none).
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as v from "valibot";
import { asStorageError, type Logger } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { coldStartRuleOf, kerasServing, modelDirs, writeMlflowModel, type ModelKind, type RunEntry } from "@ms/serve";
import type { DatasetInput, RunLog, Tracker } from "@ms/tracking";

/** The artifact path (and LoggedModel name) of the final model, and the parent's tags that point at it. */
export const MODEL_ARTIFACT_PATH = "model";
export const MODEL_TAGS = { uri: "ms.model.uri", kind: "ms.model.kind", id: "ms.model.id" } as const;

export interface LoggedFinalModel {
  /** `runs:/<run>/model`. */
  uri: string;
  /** The step run that produced the model. */
  runId: string;
  kind: ModelKind;
  /** The LoggedModel's id, where the store has them. */
  modelId?: string;
}

export interface ModelLogInput {
  tracker: Tracker;
  log: RunLog;
  logger: Logger;
  parentRunId: string;
  entries: readonly RunEntry[];
}

/** The kind `ms predict` would answer with, and the entry that holds the model; undefined when the run has none. */
async function finalModel(entries: readonly RunEntry[]): Promise<{ kind: ModelKind; entry: RunEntry } | undefined> {
  const keras = entries.filter((e) => e.manifest.kind === "keras-model").at(-1);
  if (keras && (await kerasServing(keras.dir)).servable) return { kind: "keras", entry: keras };
  const als =
    entries.find((e) => e.step === "als" && e.manifest.kind === "factors") ?? entries.filter((e) => e.manifest.kind === "factors").at(-1);
  return als ? { kind: "als", entry: als } : undefined;
}

/** The step's parameters MLflow can hold (strings, numbers, booleans), for the LoggedModel's params as log_model gives the run's. */
function scalarParams(params: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (params === null || typeof params !== "object") return out;
  for (const [k, val] of Object.entries(params))
    if (["string", "number", "boolean"].includes(typeof val)) out[k] = val as string | number | boolean;
  return out;
}

/** Logs the run's final model; undefined (and a debug line) when the run produced none that can be served. */
export async function logFinalModel(input: ModelLogInput): Promise<LoggedFinalModel | undefined> {
  const { tracker, logger } = input;
  const found = await finalModel(input.entries);
  if (!found || !input.entries.some((e) => e.manifest.kind === "ratings")) {
    logger.debug("no servable model in this run: no MLflow Model logged");
    return undefined;
  }
  const { kind, entry } = found;
  const run = { runId: input.parentRunId, experimentId: input.log.experiment, entries: [...input.entries] };
  const dirs = modelDirs(run, kind);
  // The model carries the run's cold-start rule, fitted here on its training part (this reads every rating).
  const coldStart = coldStartRuleOf(run, await readRatingsColumns(dirs.ratings));
  const uri = `runs:/${entry.runId}/${MODEL_ARTIFACT_PATH}`;
  const logged = await tracker.createLoggedModel({
    experimentId: input.log.experiment,
    name: MODEL_ARTIFACT_PATH,
    sourceRunId: entry.runId,
    modelType: kind,
    tags: { [MODEL_TAGS.kind]: kind, "ms.cache.key": entry.key },
    params: scalarParams(entry.manifest.params),
  });
  if (!logged)
    logger.debug({ trackingUri: tracker.uri }, "the tracking store has no logged models: the model is logged as the run's artifacts only");
  // Built outside the cache directory, which may be read-only for a fully cached run.
  let work: string | undefined;
  try {
    work = await fs.mkdtemp(path.join(os.tmpdir(), "ms-mlflow-model-")).catch((error: unknown) => {
      throw asStorageError(error, os.tmpdir());
    });
    const dir = path.join(work, MODEL_ARTIFACT_PATH);
    await writeMlflowModel(
      {
        kind,
        dirs,
        coldStart,
        runId: entry.runId,
        artifactPath: MODEL_ARTIFACT_PATH,
        ...(logged ? { modelId: logged.modelId } : {}),
        producedBy: `${entry.manifest.producedBy.step}@${entry.manifest.producedBy.version}`,
      },
      dir,
    );
    await tracker.logArtifacts(entry.runId, dir, MODEL_ARTIFACT_PATH);
    if (logged) {
      await tracker.logLoggedModelArtifacts(logged.modelId, dir);
      await tracker.logOutputs(entry.runId, [{ modelId: logged.modelId, step: 0 }]);
      await tracker.finalizeLoggedModel(logged.modelId, "READY");
    }
  } catch (error) {
    if (logged) await tracker.finalizeLoggedModel(logged.modelId, "FAILED").catch(() => undefined);
    throw error;
  } finally {
    if (work) await fs.rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
  await input.log.tags(input.parentRunId, {
    [MODEL_TAGS.uri]: uri,
    [MODEL_TAGS.kind]: kind,
    ...(logged ? { [MODEL_TAGS.id]: logged.modelId } : {}),
  });
  logger.info({ model: uri, kind, ...(logged ? { modelId: logged.modelId } : {}) }, `model: logged as an MLflow Model, ${uri}`);
  return { uri, runId: entry.runId, kind, ...(logged ? { modelId: logged.modelId } : {}) };
}

/** What the dataset input reads of the etl and download manifests. */
const RatingsDetails = v.object({
  rows: v.number(),
  schema: v.array(v.object({ name: v.string(), type: v.string() })),
  source: v.optional(v.object({ path: v.optional(v.string()), digest: v.optional(v.string()) })),
});
const RawDetails = v.object({ name: v.optional(v.string()), source: v.optional(v.string()), ratingsFile: v.optional(v.string()) });

/** Parquet / DuckDB column types as MLflow's column types. */
const COLUMN_TYPES: Record<string, string> = {
  INT32: "integer",
  INT64: "long",
  FLOAT: "float",
  DOUBLE: "double",
  BOOLEAN: "boolean",
  STRING: "string",
  VARCHAR: "string",
};

/** The ratings the run used, as an MLflow dataset: name, digest (the etl output's, cut to MLflow's 36 characters), source, schema, row count. */
export function ratingsDataset(entries: readonly RunEntry[]): DatasetInput | undefined {
  const ratings = entries.filter((e) => e.manifest.kind === "ratings").at(-1);
  const details = ratings && v.safeParse(RatingsDetails, ratings.manifest.details);
  if (!ratings || !details?.success) return undefined;
  const rawEntry = entries.filter((e) => e.manifest.kind === "raw-dataset").at(-1);
  const raw = rawEntry ? v.safeParse(RawDetails, rawEntry.manifest.details) : undefined;
  const file = details.output.source?.path ?? (raw?.success ? raw.output.ratingsFile : undefined);
  const name = (raw?.success ? raw.output.name : undefined) ?? (file ? path.basename(file) : "ratings");
  const hex = ratings.manifest.digest.replace(/^sha256:/, "");
  const columns = details.output.schema.map((c) => ({
    type: COLUMN_TYPES[c.type.toUpperCase()] ?? "string",
    name: c.name,
    required: true,
  }));
  return {
    name,
    digest: hex.slice(0, 36),
    sourceType: "local",
    source: JSON.stringify({
      ...(file ? { uri: pathToFileURL(path.resolve(file)).href } : {}),
      ...(raw?.success && raw.output.source ? { release: raw.output.source } : {}),
      ...(details.output.source?.digest ? { sha256: details.output.source.digest } : {}),
    }),
    schema: JSON.stringify({ mlflow_colspec: columns }),
    profile: JSON.stringify({ num_rows: details.output.rows, ms_digest: ratings.manifest.digest }),
    context: "training",
  };
}

/** Logs the run's ratings as an input of the parent and of the given step runs. */
export async function logDataset(tracker: Tracker, entries: readonly RunEntry[], runIds: readonly string[], logger: Logger): Promise<void> {
  const dataset = ratingsDataset(entries);
  if (!dataset) {
    logger.debug("no ratings entry with a schema: no dataset input logged");
    return;
  }
  for (const runId of new Set(runIds)) await tracker.logInputs(runId, [dataset]);
}
