/**
 * The interop tests need Python (pyarrow, pyspark): the global setup builds or reuses the venv of
 * tools/python/ensure-venv.sh once per run and provides its path to the tests.
 */
import { packageTests } from "../vitest-preset.js";

export default packageTests({ globalSetup: ["src/global-setup.ts"], testTimeout: 300_000, hookTimeout: 900_000, passWithNoTests: true });
