#!/usr/bin/env node
/**
 * `ms-als`: trains explicit ALS-WR factors from an etl ratings artifact. Generated from the step's
 * definition: `--ratings DIR --out DIR` and one flag per parameter (`--als-max-iter 20`).
 * SIGINT/SIGTERM abort the step (exit 130, nothing published); a second one exits at once.
 */
import { runStepCli } from "@ms/contracts";
import { alsStep } from "./step.js";

await runStepCli(alsStep, { name: "ms-als", summary: "train explicit ALS (ALS-WR, Spark MLlib semantics) user and movie factors" });
