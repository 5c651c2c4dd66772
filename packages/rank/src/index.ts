/**
 * @ms/rank: the rank step of the ms pipeline (a ranking model fitted on the etl ratings' training
 * part: EASE, or popularity), the ranking metrics every top-N evaluation of ms uses, the top-k
 * selection every list uses, and the serving API (`openRanker`: recommend one user, or every
 * user in one batch).
 */
export {
  RankingAccumulator,
  rankingMetrics,
  rankingMetricsRecord,
  type RankingMetrics,
  type RankingAccumulatorOptions,
  type UserLists,
} from "./metrics.js";
export { TopKSelector, topK, type TopKResult } from "./topk.js";
export { invertSpd, inverseAt, NotPositiveDefiniteError } from "./inverse.js";
export { easeFromGram, fitEase, gramMatrix, type EaseFit, type Histories, type SparseRows } from "./ease.js";
export { groupByUser, historyOf, positionsOf, sampleUsers, trainingItems, type TrainingItems } from "./data.js";
export {
  evaluateRanker,
  evaluationOf,
  fitRanker,
  historiesOf,
  modelItemsOf,
  penalisePopularity,
  scoreRanker,
  type Evaluation,
  type EvaluateOptions,
  type FitOptions,
  type FittedRanker,
  type RatingColumns,
} from "./fit.js";
export {
  Ranker,
  type BatchRecommendation,
  type Reason,
  type Recommendation,
  type RecommendOptions,
  type RankModel,
  type RankerModel,
} from "./ranker.js";
export { rank, openRanker, type RankResult } from "./rank.js";
export {
  AUTO_FALLBACK,
  AUTO_LAMBDAS,
  AUTO_PENALTIES,
  MIN_HISTORY,
  VALIDATION_SHARE,
  chooseTrial,
  selectEase,
  validationSplit,
  type EaseSelection,
  type EaseTrial,
  type SelectOptions,
} from "./select.js";
export { recommendAllParallel } from "./parallel.js";
export {
  rankParams,
  rankingParams,
  resolveRankParams,
  completeRankParams,
  RANK_DEFAULTS,
  RANK_MODELS,
  MAX_MODEL_ITEMS,
  type RankParams,
  type RankingParams,
} from "./params.js";
export {
  readRankerArtifact,
  writeRankerArtifact,
  RANKER_FILES,
  RANKER_KIND,
  RankerDetailsSchema,
  type RankerArtifact,
  type RankerDetails,
} from "./adapter.js";
export { rankStep } from "./step.js";
export { RANK_VERSION } from "./version.js";
