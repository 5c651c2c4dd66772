#!/usr/bin/env node
/**
 * `ms-fm`: the out-of-fold features and the full fit of the Bayesian factorization machine, from
 * an etl ratings artifact and an als factors artifact. Generated from the step's definition:
 * `--ratings DIR --factors DIR --out DIR` and one flag per parameter (`--fm-max-samples 200`).
 * SIGINT/SIGTERM abort the step (exit 130, nothing published); a second one exits at once.
 */
import { runStepCli } from "@ms/contracts";
import { fmStep } from "./step.js";

await runStepCli(fmStep, { name: "ms-fm", summary: "out-of-fold stacking features of a Bayesian factorization machine (Gibbs sampling)" });
