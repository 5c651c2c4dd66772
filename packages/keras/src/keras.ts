/**
 * The keras step (the seed's `train_keras`): a small dense network trained on ALS factors to
 * predict ratings, with the seed's defaults, the als step's train/test split, streamed batches,
 * and a TensorFlow.js layers model published atomically with its manifest.
 */
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadInputError,
  BadParameterError,
  buildArtifactDir,
  CorruptArtifactError,
  MissingArtifactError,
  silentLogger,
  writeManifest,
  type Logger,
  type StepContext,
  type StepResult,
} from "@ms/contracts";
import type { LayersModel } from "@tensorflow/tfjs";
import { readTablesDir, writeTablesDir, type FmArtifact, type StackedTables } from "@ms/fm";
import { splitOfFactors } from "@ms/als";
import path from "node:path";
import {
  loadModelFiles,
  MODEL_FILE,
  ratingsDigests,
  readFactors,
  readFeatures,
  readModelManifest,
  readRatingsColumns,
  readStackedTables,
  saveModelFiles,
} from "./adapter.js";
import { loadTf, type BackendChoice, type BackendName, type Tf } from "./backend.js";
import { FeatureAssembler, joinRatings } from "./features.js";
import { evaluateMse, predictFeatures } from "./network.js";
import type { KerasParams } from "./params.js";
import { interruption, round, trainNetwork, type StackedInput } from "./train.js";
import type { KerasDetails, KerasInputs, KerasManifest, KerasMetrics, KerasOutputs } from "./types.js";
import { KERAS_VERSION } from "./version.js";

/** The final metrics the step reports (the per-epoch history goes out as it trains). */
const REPORTED_METRICS = [
  "training_nrows",
  "test_nrows",
  "train_mse",
  "test_mse",
  "test_rmse",
  "test_cold_rows",
  "dropped_no_factors",
  "epochs_run",
] as const;

/** Runs the keras step into `outDir` (created, or replacing an earlier keras-model output); `params` are resolved (`resolveKerasParams`). */
export async function keras(
  inputs: KerasInputs,
  params: KerasParams,
  outDir: string,
  ctx: Partial<StepContext> = {},
): Promise<StepResult<KerasOutputs, KerasMetrics> & { manifest: KerasManifest; modelFile: string }> {
  const logger = ctx.logger ?? silentLogger();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "keras-model");
  if (!ctx.inputsVerified)
    await Promise.all([assertArtifactIntact(inputs.factors, "factors"), assertArtifactIntact(inputs.ratings, "ratings")]);
  const factors = await readFactors(inputs.factors);
  const given = await ratingsDigests(inputs.ratings);
  const fitted = factors.details.ratings;
  if (!given.all.includes(fitted.digest) && !(fitted.fileDigest !== undefined && given.all.includes(fitted.fileDigest))) {
    const what = `${path.resolve(inputs.factors)}: the factors were fitted on ratings ${fitted.digest}, not on the ratings given (${given.digest}, ${given.file})`;
    if (!params.keras_allow_foreign_factors)
      throw new CorruptArtifactError(
        `${what}; pass --keras-allow-foreign-factors (-P keras_allow_foreign_factors=true) to train on them anyway`,
      );
    logger.warn({ factorsRatings: fitted.digest, ratings: given.digest }, `keras: ${what}; training anyway (keras_allow_foreign_factors)`);
  }
  const ratings = await readRatingsColumns(inputs.ratings);
  const features = params.keras_features === "stacked" ? await stackedInput(inputs, factors.manifest.digest, given.all) : undefined;
  if (ctx.signal?.aborted) throw interruption(ctx.signal);
  const split = splitOfFactors(factors.details);
  logger.info(
    {
      ratings: ratings.rows,
      rank: factors.rank,
      users: factors.userIds.length,
      movies: factors.itemIds.length,
      features: params.keras_features,
      split,
      status: "training",
    },
    "keras: training",
  );
  const trained = await trainNetwork(ratings, factors, split, params, { ...ctx, logger }, features?.input);
  try {
    const { metrics } = trained;
    return await buildArtifactDir(target, async (staging) => {
      const files = await saveModelFiles(trained.tf, trained.model, staging);
      const tables = trained.stacked ? await writeTablesDir(staging, trained.stacked.tables) : undefined;
      if (tables) files.push(...tables.files);
      if (ctx.signal?.aborted) throw interruption(ctx.signal);
      const details: KerasDetails = {
        backend: trained.backend,
        rank: factors.rank,
        inputWidth: trained.inputWidth,
        features: params.keras_features,
        ...(trained.columns ? { columns: [...trained.columns] } : {}),
        ...(trained.stacked && tables ? { stacked: { model: trained.stacked.model, tables: tables.record } } : {}),
        ...(features ? { fm: { digest: features.artifact.manifest.digest } } : {}),
        split,
        validation: "tail",
        history: trained.history,
        factors: { digest: factors.manifest.digest },
        ratings: {
          rows: ratings.rows,
          droppedTrain: trained.joined.droppedTrain,
          droppedTest: trained.joined.droppedTest,
          digest: given.digest,
        },
      };
      const manifest = await writeManifest(staging, {
        kind: "keras-model",
        files,
        params,
        metrics,
        details,
        producedBy: { step: "keras", version: KERAS_VERSION },
      });
      for (const key of REPORTED_METRICS) ctx.metrics?.metric(key, metrics[key]);
      logger.info(
        {
          test_rmse: round(metrics.test_rmse),
          train_mse: round(metrics.train_mse),
          test_mse: round(metrics.test_mse),
          seconds: round(metrics.seconds),
        },
        "keras: done",
      );
      return {
        outputs: { model: { kind: "keras-model", dir: target, digest: manifest.digest } },
        metrics,
        manifest,
        modelFile: path.join(target, MODEL_FILE),
      };
    });
  } finally {
    trained.model.dispose();
  }
}

/** A model loaded back from a keras-model directory. */
export interface LoadedModel {
  tf: Tf;
  backend: BackendName;
  model: LayersModel;
  manifest: KerasManifest;
  inputWidth: number;
  /** A stacked model's full-fit tables: what `predictPairs` builds a new pair's features from. */
  stacked?: StackedTables;
}

export async function loadModel(dir: string, options: { backend?: BackendChoice; logger?: Logger } = {}): Promise<LoadedModel> {
  const abs = path.resolve(dir);
  const manifest = await readModelManifest<KerasParams, KerasMetrics, KerasDetails>(abs);
  const stacked = await stackedTablesOf(abs, manifest.details.stacked);
  const { tf, backend } = await loadTf(options.backend ?? "auto", options.logger);
  const model = await loadModelFiles(tf, abs);
  return { tf, backend, model, manifest, inputWidth: manifest.details.inputWidth, ...(stacked ? { stacked } : {}) };
}

/** Predicted ratings for a row-major feature matrix (`n * inputWidth` floats, the training layout). */
export function predict(loaded: LoadedModel, features: Float32Array): Promise<Float32Array> {
  return predictFeatures(loaded.tf, loaded.model, features);
}

/**
 * Predicted ratings of (userIds[i], movieIds[i]) by a stacked model: each pair's features from
 * the full fit's tables (exactly as its test rows had them), then the network. An id without
 * training ratings is a BadParameterError naming it.
 */
export async function predictStackedPairs(
  loaded: LoadedModel,
  userIds: ArrayLike<number>,
  movieIds: ArrayLike<number>,
  timestamps?: ArrayLike<number>,
): Promise<Float32Array> {
  if (!loaded.stacked)
    throw new BadParameterError(
      "--model",
      `the keras model was trained on the "${loaded.manifest.details.features}" features, not the stacked ones`,
    );
  const { stackedPairFeatures } = await import("@ms/fm");
  return predict(loaded, stackedPairFeatures(loaded.stacked, userIds, movieIds, timestamps));
}

/**
 * Re-scores a saved model on the ratings and factors it was trained with (same split, same
 * features): the test and train MSE, which must match the manifest's metrics.
 */
export async function evaluateModel(
  dir: string,
  inputs: KerasInputs,
  options: { backend?: BackendChoice; logger?: Logger } = {},
): Promise<{ train_mse: number; test_mse: number; test_nrows: number }> {
  const loaded = await loadModel(dir, options);
  try {
    const factors = await readFactors(inputs.factors);
    const ratings = await readRatingsColumns(inputs.ratings);
    const { details } = loaded.manifest;
    if (factors.rank !== details.rank)
      throw new BadInputError(`factors of rank ${factors.rank} given to a model trained on rank ${details.rank}`, { file: inputs.factors });
    const joined = joinRatings(ratings, factors, details.split);
    const given = details.features === "stacked" ? await ratingsDigests(inputs.ratings) : undefined;
    const stacked = given ? (await stackedInput(inputs, factors.manifest.digest, given.all)).input : undefined;
    const assembler = new FeatureAssembler(details.features, factors, joined, stacked);
    return {
      train_mse: await evaluateMse(loaded.tf, loaded.model, assembler, joined.trainRows),
      test_mse: await evaluateMse(loaded.tf, loaded.model, assembler, joined.testRows),
      test_nrows: joined.testRows.length,
    };
  } finally {
    loaded.model.dispose();
  }
}

/** A stacked model's full-fit tables, as it saved them (fm's table files, or the flat file of models from before the fm step). */
async function stackedTablesOf(dir: string, recorded: KerasDetails["stacked"]): Promise<StackedTables | undefined> {
  if (!recorded) return undefined;
  if (recorded.tables) return readTablesDir(dir, recorded.tables);
  if (recorded.layout) return readStackedTables(dir, recorded.model, recorded.layout);
  throw new CorruptArtifactError(`${path.join(dir, "manifest.json")}: details.stacked records neither tables nor a layout`);
}

/**
 * The fm step's features for these ratings and factors: refused when the fm artifact was made
 * from other factors or other ratings (its rows would not be these ratings), or holds none.
 */
async function stackedInput(
  inputs: KerasInputs,
  factorsDigest: string,
  ratingsDigests: readonly string[],
): Promise<{ artifact: FmArtifact; input: StackedInput }> {
  if (!inputs.features)
    throw new MissingArtifactError("keras: keras_features=stacked trains on the fm step's features: give the fm artifact (--features DIR)");
  const artifact = await readFeatures(inputs.features);
  const { details } = artifact;
  const where = path.join(artifact.dir, "manifest.json");
  if (details.factors.digest !== factorsDigest)
    throw new CorruptArtifactError(
      `${where}: the features were made from factors ${details.factors.digest}, not the factors given (${factorsDigest})`,
    );
  if (!ratingsDigests.includes(details.ratings.digest))
    throw new CorruptArtifactError(
      `${where}: the features were made from ratings ${details.ratings.digest}, not the ratings given (${ratingsDigests[0]})`,
    );
  if (details.model === "none" || !artifact.tables)
    throw new BadParameterError(
      "fm_model",
      "is none, so the fm step made no features; keras_features=stacked needs them (or use -P keras_features=seed)",
    );
  return {
    artifact,
    input: { width: details.width, values: artifact.values, columns: details.columns, model: details.model, tables: artifact.tables },
  };
}
