import { packageTests } from "../../tools/vitest-preset.js";

export default packageTests();
