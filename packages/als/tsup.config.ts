import { cpSync } from "node:fs";
import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

// `testing` is the separate `@ms/als/testing` export (a loopback Spark cluster for tests), not part of the main index.
// The PySpark job is copied into dist/, so the packed package carries it and the driver's code identity covers it.
export default defineConfig(
  packageBuild(
    import.meta.url,
    { index: "src/index.ts", bin: "src/bin.ts", worker: "src/worker.ts", testing: "src/spark/testing.ts" },
    {
      dts: { entry: { index: "src/index.ts", testing: "src/spark/testing.ts" } },
      onSuccess: async () => cpSync("spark", "dist/spark", { recursive: true }),
    },
  ),
);
