import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

// `testing` is the separate `@ms/tracking/testing` export (test support), not part of the main index.
export default defineConfig(
  packageBuild(
    import.meta.url,
    { index: "src/index.ts", bin: "src/bin.ts", testing: "src/testing/index.ts" },
    { dts: { entry: { index: "src/index.ts", testing: "src/testing/index.ts" } } },
  ),
);
