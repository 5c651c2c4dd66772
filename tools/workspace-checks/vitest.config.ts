import { packageTests } from "../vitest-preset.js";

export default packageTests({ testTimeout: 120_000 });
