#!/usr/bin/env node
/**
 * `ms-keras`: ratings (etl output) + factors (als output) -> a TensorFlow.js model in --out.
 * Generated from the step's definition: `--ratings DIR --factors DIR --out DIR` and one flag per
 * parameter (`--keras-epochs 3`). SIGINT/SIGTERM stop training at the end of the current batch
 * (exit 130, nothing published); a second one exits at once.
 */
import { runStepCli } from "@ms/contracts";
import { kerasStep } from "./step.js";

await runStepCli(kerasStep, {
  name: "ms-keras",
  summary: "train the seed's Keras-style network (TensorFlow.js) on ratings plus ALS factors",
});
