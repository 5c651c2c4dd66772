import { defineConfig } from "tsup";
import { packageBuild } from "../../tools/tsup-preset.mjs";

// tsup externalises dependencies but not optionalDependencies; tfjs-node must stay a runtime import.
export default defineConfig(packageBuild(import.meta.url, ["src/index.ts", "src/bin.ts"], { external: [/^@tensorflow\//] }));
