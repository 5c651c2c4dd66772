/**
 * @ms/fm: the Bayesian factorization machine of the ms pipeline (a Gibbs-sampled factor model with
 * biases) and the out-of-fold stacking features that the keras step trains on.
 */
export { gibbsFit, type GibbsData, type GibbsFeatures, type GibbsFit, type GibbsOptions } from "./bayes.js";
export { STOP_DEFAULTS, type ValidationRows } from "./stopping.js";
export { TIME_BINS, type TimeTables } from "./timebias.js";
export {
  outOfFoldFeatures,
  checkOofOptions,
  oofColumns,
  resolveOofModel,
  stackedPairFeatures,
  stackedKnows,
  OOF_COLUMNS,
  OOF_LIMITS,
  OOF_MODELS,
  AUTO_BAYES_MAX_TRAIN,
  type FactorSet,
  type OofFeatures,
  type OofModel,
  type OofOptions,
  type OofRatings,
  type StackedTables,
} from "./oof.js";
