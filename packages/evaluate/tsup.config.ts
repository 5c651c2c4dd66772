import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

export default defineConfig(packageBuild(import.meta.url, { index: "src/index.ts", worker: "src/worker.ts" }));
