/**
 * The ALS kind of the MLflow Model through MLflow's own Python client (the pinned mlflow venv of
 * tools/mlflow): `mlflow.pyfunc.load_model` of a directory `writeMlflowModel` wrote predicts what
 * @ms/als's `predictWith` gives for every known pair (float64 sums of float32 products: within
 * 1e-12), scores a pair with an unknown id by ms's cold-start rule to the same bits as
 * @ms/contracts' `ColdStartRule` (alone or mixed with known pairs), and the venv holds the
 * numpy and pandas versions the model pins. The keras kind: @ms/driver's mlmodel.slow.test.ts.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { predictWith, readFactors } from "@ms/als";
import { ensureMlflowVenv } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ColdStartRule, splitMaskOf } from "@ms/contracts";
import { PYFUNC_PINS, writeMlflowModel } from "./mlmodel.js";
import { fixture, RATINGS, type Fixture } from "./__tests__/fixture.js";

const exec = promisify(execFile);
let fx: Fixture;
let venv: string;
beforeAll(async () => {
  fx = await fixture();
  venv = await ensureMlflowVenv();
}, 20 * 60_000);
afterAll(async () => fx?.dispose());

const SCRIPT = `
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow, numpy, pandas, platform
import mlflow.pyfunc
m = mlflow.pyfunc.load_model(sys.argv[1])
pairs = json.loads(sys.argv[2])
p = m.predict(pandas.DataFrame(pairs, columns=["userId", "movieId"]))
cold = m.predict(pandas.DataFrame(json.loads(sys.argv[3]), columns=["userId", "movieId"]))
print(json.dumps({"predictions": [float(x) for x in p], "cold": [float(x) for x in cold],
  "versions": {"python": platform.python_version(), "mlflow": mlflow.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}}))
`;

describe("the ALS MLflow Model in MLflow's Python client", () => {
  it("predicts what @ms/als predicts, and a pair with an unknown id what ms's cold-start rule gives, bit for bit", async () => {
    const dir = path.join(fx.root, "als-model");
    const coldStart = new ColdStartRule(RATINGS, splitMaskOf({ seed: 1, splitProp: 0.8 }, RATINGS));
    await writeMlflowModel({ kind: "als", dirs: { factors: fx.factorsDir }, coldStart, producedBy: "als@0.1.0" }, dir);
    const users = [3, 3, 5, 8, 8, 5];
    const movies = [10, 40, 20, 30, 10, 40];
    const pairs = users.map((u, i) => [u, movies[i]]);
    // Unknown user, unknown movie, both, and known pairs among them (scored by the model).
    const mixed = [
      [3, 10],
      [4, 10],
      [3, 99],
      [4, 99],
      [8, 40],
      [5, 99],
    ];
    const { stdout } = await exec(path.join(venv, "bin/python"), ["-c", SCRIPT, dir, JSON.stringify(pairs), JSON.stringify(mixed)], {
      timeout: 180_000,
    });
    const seen = JSON.parse(stdout) as { predictions: number[]; cold: number[]; versions: Record<string, string> };
    const factors = await readFactors(fx.factorsDir);
    const expected = predictWith(factors, users, movies);
    for (const [i, p] of seen.predictions.entries()) expect(Math.abs(p - expected[i])).toBeLessThan(1e-12);
    const known = (u: number, m: number) => factors.userIds.includes(u) && factors.itemIds.includes(m);
    for (const [i, [u, m]] of mixed.entries()) {
      if (known(u, m)) expect(Math.abs(seen.cold[i] - predictWith(factors, [u], [m])[0])).toBeLessThan(1e-12);
      else expect(seen.cold[i], `pair ${u},${m}`).toBe(coldStart.predict(u, m));
    }
    expect(new Set(seen.cold.filter((_, i) => !known(mixed[i][0], mixed[i][1]))).size).toBe(4);
    expect(seen.versions).toEqual(PYFUNC_PINS);
  });
});
