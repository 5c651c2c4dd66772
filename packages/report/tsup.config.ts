import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

// chart-worker is a worker thread's script, loaded by path from dist/ (not imported): its own entry.
export default defineConfig(packageBuild(import.meta.url, ["src/index.ts", "src/chart-worker.ts"]));
