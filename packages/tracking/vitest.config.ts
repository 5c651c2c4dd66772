import { defineConfig } from "vitest/config";

// Two projects so that `test:unit` (which excludes *.slow.test.ts) never builds the MLflow venv
// or starts a server: vitest runs a project's globalSetup only when it has tests queued.
export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 600_000,
    pool: "forks",
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
