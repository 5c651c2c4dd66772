/**
 * vitest globalSetup of the `slow` project: builds or reuses the mlflow virtualenv, starts one
 * real `mlflow server` (SQLite backend and served artifacts in a temp dir, free loopback port)
 * for all slow tests, and stops it at the end. Tests read its URL with `inject("mlflowUrl")`.
 */
import type { TestProject } from "vitest/node";
import type {} from "vitest";
import { startMlflowTestServer } from "./index.js";

declare module "vitest" {
  export interface ProvidedContext {
    mlflowUrl: string;
    mlflowVenv: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  const server = await startMlflowTestServer();
  process.stderr.write(`[tracking] mlflow venv ready and server ${server.url} healthy in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  project.provide("mlflowUrl", server.url);
  project.provide("mlflowVenv", server.venv);
  return () => server.stop();
}
