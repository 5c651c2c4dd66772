#!/usr/bin/env node
/**
 * `ms-rank`: fits the ranking model (EASE or popularity) on an etl ratings artifact's training part
 * and measures it with the ranking metrics. Generated from the step's definition:
 * `--ratings DIR --out DIR` and one flag per parameter (`--rank-lambda 300`).
 * SIGINT/SIGTERM abort the step (exit 130, nothing published); a second one exits at once.
 */
import { runStepCli } from "@ms/contracts";
import { rankStep } from "./step.js";

await runStepCli(rankStep, {
  name: "ms-rank",
  summary: "a ranking model (EASE or popularity) and its ranking metrics (nDCG@k, precision@k, ...)",
});
