/**
 * Vitest global setup: builds (first run, ~2 minutes) or reuses the pinned pyspark/pyarrow venv of
 * tools/python/ensure-venv.sh once per run (through `@ms/tracking/testing`, the workspace's one
 * venv helper), and provides its directory to the tests as `pythonVenv`. MS_SPARK_VENV points the
 * script at another location.
 */
import { ensurePythonVenv } from "@ms/tracking/testing";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    pythonVenv: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  project.provide("pythonVenv", await ensurePythonVenv("spark"));
}
