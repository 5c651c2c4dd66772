/**
 * @ms/server: `ms serve`, an HTTP scoring server over a run's model. MLflow's scoring protocol
 * (`/ping`, `/health`, `/version`, `/invocations` in its four JSON forms and CSV, its error body)
 * plus `/recommend`, on Fastify, with bounded requests, a graceful close on SIGTERM and model
 * swaps on SIGHUP or a period. The driver's `ms serve` is a thin command over `serve`.
 */
export { serve, type ServeOptions, type ServeResult, type ListeningInfo, type ModelSource } from "./run.js";
export { buildServer, DEFAULT_LIMITS, type ServerLimits, type ServerDeps } from "./server.js";
export { loadServing, locateSource, type ServingModel, type LoadOptions } from "./model.js";
export { pairsFromJson, pairsFromCsv, ScoringError, INPUT_COLUMNS, INPUT_FORMATS, type Pairs } from "./protocol.js";
export { recommendFor, RecommendBody, type RecommendRequest, type UserRecommendations } from "./recommend.js";
export { ModelSlot } from "./slot.js";
export { SERVER_VERSION } from "./version.js";
