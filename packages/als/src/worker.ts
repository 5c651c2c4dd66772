/**
 * A sweep worker thread: holds the shared ALS state (SharedArrayBuffers handed over at start) and,
 * for each side number it is sent, solves blocks from that side's shared counter until none are
 * left (or the shared abort flag is raised), then answers with the same number.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { AlsState, Side } from "./kernel-types.js";
import { drainBlocks, scratchFor } from "./kernel.js";

const port = parentPort;
if (!port) throw new Error("@ms/als worker.js must run as a worker thread");
const state = (workerData as { state: AlsState }).state;
const scratch = scratchFor(state);
port.on("message", (side: Side) => {
  drainBlocks(state, side, scratch);
  port.postMessage(side);
});
