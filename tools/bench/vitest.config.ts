/**
 * The bench's own tests: the ranking bench's glue (tools/bench/ranking/*.test.mjs). The benchmarks
 * themselves are commands (`pnpm bench NAME`), not tests.
 */
import { packageTests } from "../vitest-preset.js";

export default packageTests({ include: ["ranking/**/*.test.mjs"], testTimeout: 600_000 });
