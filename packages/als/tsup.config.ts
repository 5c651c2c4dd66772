import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

// `testing` is the separate `@ms/als/testing` export (a loopback Spark cluster for tests), not part of the main index.
export default defineConfig(
  packageBuild(
    import.meta.url,
    { index: "src/index.ts", bin: "src/bin.ts", worker: "src/worker.ts", testing: "src/spark/testing.ts" },
    { dts: { entry: { index: "src/index.ts", testing: "src/spark/testing.ts" } } },
  ),
);
