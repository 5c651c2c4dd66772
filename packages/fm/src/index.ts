/**
 * @ms/fm: the fm step of the ms pipeline (between als and keras): a Bayesian factorization
 * machine (Gibbs-sampled factor model with biases) fitted out of fold, whose features of every
 * rating and full fit (`StackedTables`) the keras step reads from the fm artifact.
 */
export { gibbsFit, type GibbsData, type GibbsFeatures, type GibbsFit, type GibbsOptions } from "./bayes.js";
export { STOP_DEFAULTS, type ValidationRows } from "./stopping.js";
export { TIME_BINS, type TimeTables } from "./timebias.js";
export {
  outOfFoldFeatures,
  checkOofOptions,
  resolveOofModel,
  OOF_LIMITS,
  OOF_MODELS,
  AUTO_BAYES_MAX_TRAIN,
  type FactorSet,
  type OofFeatures,
  type OofModel,
  type OofOptions,
  type OofRatings,
} from "./oof.js";
export {
  oofColumns,
  stackedPairFeatures,
  stackedPredictions,
  stackedKnows,
  OOF_COLUMNS,
  type StackedTables,
} from "./stacked.js";
export { selectGroups, SELECTABLE_GROUPS, SELECT_Z, type GroupTrial, type SelectableGroup } from "./select.js";
export { fm, alsSettings, fmMetrics, type FmInputs, type FmMetrics } from "./fm.js";
export {
  fmParams,
  resolveFmParams,
  FM_DEFAULTS,
  FM_MODELS,
  FM_OUTPUTS,
  GROUP_SETTINGS,
  type GroupSetting,
  type FmParams,
  type FmModel,
  type FmOutput,
} from "./params.js";
export {
  readFmArtifact,
  writeFmArtifact,
  readTablesDir,
  writeTablesDir,
  FM_FILES,
  FM_KIND,
  FmDetailsSchema,
  StackedTablesSchema,
  TablesRecordSchema,
  type FmArtifact,
  type FmArtifactInput,
  type FmDetails,
  type TablesRecord,
} from "./adapter.js";
export { fmStep } from "./step.js";
export { FM_VERSION } from "./version.js";
