/**
 * The one tsup setup every package builds with: ESM for Node 20, declarations for the public
 * entry only, code splitting so bins share chunks with the library, and the package version baked
 * in as `__PACKAGE_VERSION__` so a step can name the code that produced an artifact.
 */
import { readFileSync } from "node:fs";

/** @param {string} configUrl the package's `import.meta.url` @param {string[]} entry @param {import("tsup").Options} [extra] */
export function packageBuild(configUrl, entry, extra = {}) {
  const { version } = JSON.parse(readFileSync(new URL("./package.json", configUrl), "utf8"));
  return {
    entry,
    format: ["esm"],
    target: "node20",
    platform: "node",
    dts: { entry: "src/index.ts" },
    clean: true,
    sourcemap: true,
    splitting: true,
    define: { __PACKAGE_VERSION__: JSON.stringify(version) },
    ...extra,
  };
}
