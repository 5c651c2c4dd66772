/**
 * @ms/progress: the live status lines of a pipeline run on a terminal (`LiveProgress`), fed by the
 * steps' structured log records. Its own package so that log-update is loaded only by a caller
 * that draws on a terminal, and any bin can use it.
 */
export { LiveProgress, type Terminal } from "./progress.js";
