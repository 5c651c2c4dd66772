/**
 * vitest globalSetup of the `slow` project: builds or reuses the mlflow virtualenv, starts one
 * real `mlflow server` (SQLite backend and served artifacts in a temp dir, free loopback port)
 * for all slow tests, and stops it at the end. Tests read its URL with `inject("mlflowUrl")`.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";
import type {} from "vitest";
import { ensureVenv, makeTempDir, startMlflowServer } from "./mlflow-python.js";

declare module "vitest" {
  export interface ProvidedContext {
    mlflowUrl: string;
    mlflowVenv: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  const venv = await ensureVenv();
  const t1 = Date.now();
  const dir = await makeTempDir("ms-mlflow-server-");
  const server = await startMlflowServer(venv, [
    "--backend-store-uri",
    `sqlite:///${path.join(dir, "mlflow.db")}`,
    "--serve-artifacts",
    "--artifacts-destination",
    path.join(dir, "artifacts"),
  ]);
  process.stderr.write(`[tracking] mlflow venv ready in ${((t1 - t0) / 1000).toFixed(1)}s, server ${server.url} healthy in ${((Date.now() - t1) / 1000).toFixed(1)}s\n`);
  project.provide("mlflowUrl", server.url);
  project.provide("mlflowVenv", venv);
  return async () => {
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  };
}
