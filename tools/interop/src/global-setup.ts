/**
 * Vitest global setup: builds (first run, ~2 minutes) or reuses the pinned pyspark/pyarrow venv of
 * tools/python/ensure-venv.sh once per run, and provides its directory to the tests as
 * `pythonVenv`. MS_SPARK_VENV points the script at another location.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    pythonVenv: string;
  }
}

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../python/ensure-venv.sh");

export default function setup(project: TestProject): void {
  const venv = execFileSync(script, ["spark"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  project.provide("pythonVenv", venv);
}
