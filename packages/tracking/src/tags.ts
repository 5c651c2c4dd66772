/**
 * The tag names a pipeline run carries: MLflow's system tags (which MLflow's UI and clients read:
 * run name, parent run, user, source, entry point) and the ms ones that say how a step's result
 * was obtained from the step cache. One constant, so the stores, the driver and the tests agree.
 */
export const TAGS = {
  /** Makes a run nested under another one in MLflow's UI. */
  parent: "mlflow.parentRunId",
  runName: "mlflow.runName",
  user: "mlflow.user",
  entryPoint: "mlflow.project.entryPoint",
  gitCommit: "mlflow.source.git.commit",
  sourceName: "mlflow.source.name",
  sourceType: "mlflow.source.type",
  /** The step's content-addressed cache key. */
  cacheKey: "ms.cache.key",
  /** The ms process that owns a RUNNING parent run (host, pid, start time), so another one never adopts it. */
  owner: "ms.owner",
  /** "true" when the step's result was served from the cache. */
  cacheHit: "ms.cache.hit",
  /** Where the step's result came from: "local" (this cache), "remote" (the shared remote cache) or "computed". */
  cacheSource: "ms.cache.source",
  /** On a cache hit: the run that computed the cached result. */
  producedBy: "ms.cache.producedByRun",
  step: "ms.step",
  /** On a k-fold run's child run that groups one fold's step runs: the fold, 1..folds. */
  fold: "ms.fold",
} as const;

/**
 * The experiment tag MLflow 3's UI reads to choose an experiment's landing page; without it the
 * UI opens on its GenAI "Traces" page. Experiments ms creates carry it.
 */
export const EXPERIMENT_KIND_TAG = "mlflow.experimentKind";
export const EXPERIMENT_KIND = "custom_model_development";

export type TagName = (typeof TAGS)[keyof typeof TAGS];
