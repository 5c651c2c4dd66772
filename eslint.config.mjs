/**
 * ESLint runs only the two type-aware promise rules, with the TypeScript project service (each
 * package's tsconfig.json): Biome's own `noFloatingPromises`/`noMisusedPromises` (on in biome.json)
 * cannot see the types of Node's modules (`node:fs/promises` calls float unseen). Everything else
 * (lint rules, formatting) is Biome's.
 */
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/.nx/**"] },
  {
    files: ["packages/*/src/**/*.ts", "tools/*/src/**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
);
