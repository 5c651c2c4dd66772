/**
 * The worker entry of a Gibbs fit run off the main thread: it receives the data, the rows and the
 * options (no signal: the parent terminates the worker to interrupt it), fits, and posts the fit back.
 */
import { parentPort, workerData } from "node:worker_threads";
import { gibbsFit, type GibbsData, type GibbsOptions } from "./bayes.js";

const job = workerData as { data: GibbsData; trainRows: Int32Array; queryRows: Int32Array; options: GibbsOptions };
try {
  parentPort?.postMessage({ fit: await gibbsFit(job.data, job.trainRows, job.queryRows, job.options) });
} catch (error) {
  parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) });
}
