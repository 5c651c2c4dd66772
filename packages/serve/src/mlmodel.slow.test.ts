/**
 * The ALS kind of the MLflow Model through MLflow's own Python client (the pinned mlflow venv of
 * tools/mlflow): `mlflow.pyfunc.load_model` of a directory `writeMlflowModel` wrote predicts what
 * @ms/als's `predictWith` gives for every known pair (float64 sums of float32 products: within
 * 1e-12), names the first unknown id as ms does (users before movies), and the venv holds the
 * numpy and pandas versions the model pins. The keras kind: @ms/driver's mlmodel.slow.test.ts.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { predictWith, readFactors } from "@ms/als";
import { ensureMlflowVenv } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PYFUNC_PINS, writeMlflowModel } from "./mlmodel.js";
import { fixture, type Fixture } from "./__tests__/fixture.js";

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
errors = []
for bad in json.loads(sys.argv[3]):
    try:
        m.predict(pandas.DataFrame(bad, columns=["userId", "movieId"]))
        errors.append("")
    except Exception as e:
        errors.append(str(e))
print(json.dumps({"predictions": [float(x) for x in p], "errors": errors,
  "versions": {"python": platform.python_version(), "mlflow": mlflow.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}}))
`;

describe("the ALS MLflow Model in MLflow's Python client", () => {
  it("predicts what @ms/als predicts and refuses the first unknown id, users before movies", async () => {
    const dir = path.join(fx.root, "als-model");
    await writeMlflowModel({ kind: "als", dirs: { factors: fx.factorsDir }, producedBy: "als@0.1.0" }, dir);
    const users = [3, 3, 5, 8, 8, 5];
    const movies = [10, 40, 20, 30, 10, 40];
    const pairs = users.map((u, i) => [u, movies[i]]);
    const bad = [
      [
        [3, 10],
        [4, 99],
      ],
      [
        [3, 99],
        [4, 10],
      ],
    ];
    const { stdout } = await exec(path.join(venv, "bin/python"), ["-c", SCRIPT, dir, JSON.stringify(pairs), JSON.stringify(bad)], {
      timeout: 180_000,
    });
    const seen = JSON.parse(stdout) as { predictions: number[]; errors: string[]; versions: Record<string, string> };
    const expected = predictWith(await readFactors(fx.factorsDir), users, movies);
    for (const [i, p] of seen.predictions.entries()) expect(Math.abs(p - expected[i])).toBeLessThan(1e-12);
    expect(seen.errors[0]).toContain("userId: user 4 is not in the training ratings of this model");
    expect(seen.errors[1]).toContain("movieId: movie 99 has no ratings in the training data of this model");
    expect(seen.versions).toEqual(PYFUNC_PINS);
  });
});
