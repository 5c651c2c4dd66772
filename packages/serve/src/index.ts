/**
 * @ms/serve: reading a run's models back and scoring with them. `openModel` loads a model of one
 * of `MODEL_KINDS` (the ALS factors, or the keras network with the factors it was trained on)
 * behind one `predict` of (user, movie) pairs; `recommend` and `predictRatings` answer for the
 * latest finished run (found by `locateRun` in the tracking store, its entries in a given cache);
 * `evaluate` scores a run's models on its test rows for the report. `resolveModelUri` turns
 * `models:/NAME@ALIAS`, `models:/NAME/VERSION` or `runs:/ID/model` into the run that answers.
 */
export {
  openModel,
  kerasServing,
  kerasPredictPairs,
  MODEL_KINDS,
  SERVABLE_FEATURES,
  UnservableModelError,
  publishedRating,
  type ModelKind,
  type ModelDirs,
  type ServedModel,
  type AnyManifest,
  type PairScorer,
} from "./serve.js";
export {
  locateRun,
  modelDirs,
  type LocateOptions,
  type LocatedRun,
  type RunEntry,
  type RunModelDirs,
  type EntryStore,
  type EntryCheck,
} from "./locate.js";
export {
  parseModelUri,
  resolveModelUri,
  type ModelUri,
  type ResolvedModelUri,
  type ResolveOptions,
} from "./model-uri.js";
export {
  recommend,
  withModel,
  type RecommendOptions,
  type RecommendResult,
} from "./recommend.js";
export {
  recommendBatch,
  roundScore,
  splitOfRun,
  type BatchOptions,
  type BatchRow,
  type BatchRecommendation,
  type BatchStart,
  type BatchSummary,
} from "./batch.js";
export { RECOMMEND_KINDS, type RecommendKind, type Reason } from "./recommenders.js";
export {
  predictStream,
  predictRatings,
  coldStartRuleOf,
  type PredictOptions,
  type PredictResult,
  type PredictionRow,
  type PredictStreamOptions,
  type PredictStart,
  type PredictSummary,
} from "./predict.js";
export { warmPairs, type ColdSide, type KnownIds, type WarmPairs } from "./warm.js";
export { readPairs, readUserIds, pairChunks, countPairs, PAIR_CHUNK, type Pair, type PairChunk } from "./pairs.js";
export { buildHistory, type RunHistory, type HistoryColumns } from "./history.js";
export {
  evaluate,
  reportMemoKey,
  EvaluationSchema,
  type Evaluation,
  type EvaluateOptions,
  type ModelScore,
  type ErrorHistogram,
} from "./evaluate.js";
export { readMemo, writeMemo } from "./memo.js";
export {
  writeMlflowModel,
  readMlflowModel,
  MLMODEL,
  MS_MODEL_FORMAT,
  PYFUNC_PINS,
  SIGNATURE,
  type MlflowModelInput,
  type MsModelSpec,
  type WrittenMlflowModel,
} from "./mlmodel.js";
