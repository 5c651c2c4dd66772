import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

export default defineConfig(
  packageBuild(
    import.meta.url,
    { index: "src/index.ts", bin: "src/bin.ts", worker: "src/worker.ts" },
    { dts: { entry: { index: "src/index.ts" } } },
  ),
);
