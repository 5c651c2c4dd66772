import { readFileSync } from "node:fs";
import { defineConfig } from "tsup";

const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { version: string };

export default defineConfig({
  entry: ["src/index.ts", "src/bin.ts"],
  format: ["esm"],
  target: "node20",
  platform: "node",
  dts: { entry: "src/index.ts" },
  clean: true,
  sourcemap: true,
  splitting: true,
  define: { __PACKAGE_VERSION__: JSON.stringify(version) },
  // tsup externalises dependencies but not optionalDependencies; tfjs-node must stay a runtime import.
  external: [/^@tensorflow\//],
});
