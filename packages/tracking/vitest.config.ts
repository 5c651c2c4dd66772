import { defineConfig } from "vitest/config";
import { testDefaults } from "../../tools/vitest-preset.js";

// Two projects so that `test:unit` (which excludes *.slow.test.ts) never builds the MLflow venv
// or starts a server: vitest runs a project's globalSetup only when it has tests queued. The root
// sets no `include`: each project's adds to it.
export default defineConfig({
  test: {
    ...testDefaults,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["src/**/*.test.ts"], exclude: ["src/**/*.slow.test.ts"] },
      },
      {
        extends: true,
        test: { name: "slow", include: ["src/**/*.slow.test.ts"], globalSetup: ["./src/testing/global-setup.ts"], testTimeout: 180_000 },
      },
    ],
  },
});
