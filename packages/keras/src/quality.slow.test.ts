/**
 * Quality on real data: ml-latest-small through the real etl, als and fm steps, then the keras step
 * with its defaults (the fm step's stacked features): better than ALS on the same test rows, and
 * the saved model re-scores the same; `factors+dot` with the mean as initial output bias must not
 * be worse than ALS + 0.02.
 * Uses $MS_MOVIELENS_SMALL (default /work/shared/movielens/ml-latest-small).
 */
import { als, resolveAlsParams } from "@ms/als";
import { etl, resolveEtlParams } from "@ms/etl";
import { fm, resolveFmParams } from "@ms/fm";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./__tests__/fixtures.js";
import { evaluateModel, keras } from "./index.js";
import { resolveKerasParams } from "./params.js";

const SMALL = process.env.MS_MOVIELENS_SMALL ?? path.resolve(__dirname, "../../../../shared/movielens/ml-latest-small");
const csv = path.join(SMALL, "ratings.csv");
const present = existsSync(csv);
if (!present) process.stderr.write(`quality.slow.test: skipped, no MovieLens ratings at ${csv} (set MS_MOVIELENS_SMALL)\n`);

describe.skipIf(!present)("quality on ml-latest-small", () => {
  let root: string;
  let ratingsDir: string;
  let factorsDir: string;
  let featuresDir: string;
  let alsRmse: number;

  beforeAll(async () => {
    root = await tempDir();
    ratingsDir = path.join(root, "etl");
    factorsDir = path.join(root, "als");
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), ratingsDir);
    const fitted = await als({ ratings: ratingsDir }, resolveAlsParams(), factorsDir);
    alsRmse = fitted.metrics.test_rmse;
    featuresDir = path.join(root, "fm");
    await fm({ ratings: ratingsDir, factors: factorsDir }, resolveFmParams(), featuresDir);
  }, 300_000);

  afterAll(async () => {
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it("the defaults (stacked features) beat ALS, and the saved model re-scores the same", async () => {
    const out = path.join(root, "keras");
    const inputs = { ratings: ratingsDir, factors: factorsDir, features: featuresDir };
    // The default trainer (fused); the re-scoring below goes through tfjs' wasm backend.
    const r = await keras(inputs, resolveKerasParams({}), out);
    expect(r.metrics.test_nrows).toBeGreaterThan(19_000);
    expect(r.metrics.test_rmse).toBeLessThan(alsRmse);
    const again = await evaluateModel(out, inputs, { backend: "wasm" });
    expect(again.test_mse).toBeCloseTo(r.metrics.test_mse, 6);
  });

  it("factors+dot with the mean output bias is about as good as ALS", async () => {
    const r = await keras(
      { ratings: ratingsDir, factors: factorsDir },
      resolveKerasParams({ keras_features: "factors+dot", keras_output_bias: "mean" }),
      path.join(root, "dot"),
    );
    expect(r.metrics.test_rmse).toBeLessThan(alsRmse + 0.02);
  });
});
