/**
 * The pipeline: the step definitions `ms run` runs, in order. Each step's inputs are the outputs of
 * earlier steps, matched by artifact kind. Adding a step is its package plus one line here.
 */
import type { Step, StepCleaner } from "@ms/contracts";
import { alsStep } from "@ms/als";
import { downloadStep, etlStep } from "@ms/etl";
import { fmStep } from "@ms/fm";
import { kerasStep } from "@ms/keras";
import { rankStep } from "@ms/rank";

export const PIPELINE: readonly Step[] = [downloadStep, etlStep, alsStep, fmStep, kerasStep, rankStep];

/** The steps' names, in order (for `--force` and the help). */
export const STEPS: readonly string[] = PIPELINE.map((s) => s.name);

/** What the steps keep in the cache beside entries, for `ms cache gc` to clean. */
export const CLEANERS: readonly StepCleaner[] = PIPELINE.flatMap((s) => (s.cleaner ? [s.cleaner] : []));
