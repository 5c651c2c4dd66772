/**
 * The one vitest setup every package tests with, as tools/tsup-preset.mjs is for builds: tests are
 * `src/**\/*.test.ts` beside the code; the timeouts leave room for real DuckDB, Spark and MLflow
 * runs; forked workers, since the native addons (DuckDB, tfjs-node) do not load in worker threads.
 * A package's vitest.config.ts is `export default packageTests();`, with its own options as the
 * argument when it needs any.
 */
import { defineConfig, type TestUserConfig, type ViteUserConfig } from "vitest/config";

/** The options shared by every package, without `include` (for a config made of `projects`, whose includes add up). */
export const testDefaults = { testTimeout: 180_000, hookTimeout: 600_000, pool: "forks" } satisfies TestUserConfig;

/** A package's vitest config; `test` replaces or adds options (a key given replaces the preset's, arrays included). */
export function packageTests(test: TestUserConfig = {}): ViteUserConfig {
  return defineConfig({ test: { include: ["src/**/*.test.ts"], ...testDefaults, ...test } });
}
