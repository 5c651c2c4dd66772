/**
 * Test support, run as a child process: hammers one file store from another process. Appends
 * `count` values of metric `key` to an existing run (in batches of `batch`), logs the same
 * param as the other writers, and creates a run of its own under a shared experiment name.
 * Usage: node concurrent-writer.mjs ROOT RUN_ID KEY COUNT BATCH WRITER_ID
 */
import { createTracker } from "../tracker.js";

const [root, runId, key, countText, batchText, writerId] = process.argv.slice(2);
const store = createTracker(root, { env: {} });
const count = Number(countText);
const batch = Number(batchText);
const experiment = await store.getOrCreateExperiment("concurrent");
const own = await store.startRun({ experimentId: experiment.experimentId, runName: `writer-${writerId}` });
await store.logParams(runId, { shared: "same-value" });
for (let i = 0; i < count; i += batch) {
  const metrics = [];
  for (let j = i; j < Math.min(count, i + batch); j++) metrics.push({ key, value: Number(writerId) * 1_000_000 + j, step: j });
  await store.logMetrics(runId, metrics);
  await store.logMetrics(own.runId, [{ key: "progress", value: i, step: i }]);
}
await store.endRun(own.runId, "FINISHED");
process.stdout.write(JSON.stringify({ experimentId: experiment.experimentId, runId: own.runId }) + "\n");
