/**
 * @ms/keras: the keras step of the ms pipeline. A TensorFlow.js dense network trained on ALS
 * factors (a fused WebAssembly SIMD trainer by default; tfjs wasm/cpu/tfjs-node as the reference), saved in tfjs layers format, with
 * helpers to load it back and predict. tfjs itself is loaded only when a model is trained or read.
 */
export { keras, loadModel, predict, predictStackedPairs, evaluateModel, type LoadedModel } from "./keras.js";
export { trainNetwork, type StackedInput, type TrainedNetwork } from "./train.js";
export {
  kerasParams,
  resolveKerasParams,
  KERAS_DEFAULTS,
  KERAS_LIMITS,
  SEED_TRAINING,
  STACKED_TRAINING,
  type KerasParams,
} from "./params.js";
export type { KerasInputs, KerasOutputs, KerasMetrics, KerasDetails, KerasManifest } from "./types.js";
export {
  FEATURE_SETS,
  FeatureAssembler,
  mulberry32,
  featureWidth,
  joinRatings,
  validationTail,
  type FeatureSet,
  type FactorMatrices,
  type RatingColumns,
  type JoinedRatings,
  type RowFeatures,
} from "./features.js";
export {
  BACKEND_CHOICES,
  loadTf,
  trainsFused,
  type BackendChoice,
  type BackendName,
  type TfBackendName,
  type LoadedTf,
} from "./backend.js";
export { buildNetwork, fitNetwork, evaluateMse, batchDataset, type FitOptions, type FitResult } from "./network.js";
export { fitFused, fusedThreads, predictFused, type FusedOptions, type FusedNetwork } from "./fused.js";
export { MODEL_FILE, WEIGHTS_FILE, STACKED_TABLES_FILE, type StackedTablesLayout } from "./adapter.js";
export { KERAS_VERSION } from "./version.js";
export { kerasStep } from "./step.js";
export { predictTable, predictionTable, type PredictionTable } from "./arrow.js";
export { pairScorer, type PairScorer } from "./scorer.js";
