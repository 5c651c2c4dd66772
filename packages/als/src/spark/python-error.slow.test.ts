/**
 * A Spark application whose Python fails, on the loopback standalone cluster (@ms/als/testing):
 * a Python without numpy, so `pyspark.ml` cannot be imported inside the job, and one whose numpy
 * raises while the SparkSession starts, before the job can report anything. Either way the error
 * shows the Python exception (spark-submit's PythonRunner prints the job's stderr on its stdout,
 * which the step used to drop), not "ended with exit 1 without a result" and Spark's INFO lines.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { exitCodeFor } from "@ms/contracts";
import { ensurePythonVenv, freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveAlsParams } from "../params.js";
import { syntheticRatingsDir } from "../__tests__/fixtures.js";
import { alsSpark } from "./spark.js";
import { SparkApplicationError } from "./submit.js";
import { startSparkCluster, type SparkCluster } from "./testing.js";

let root: string;
let cluster: SparkCluster | undefined;
let ratingsDir: string;
/** `PYSPARK_PYTHON` for each case. */
const pythons = { withoutNumpy: "", numpyRaises: "" };
const saved = { home: process.env.SPARK_HOME, python: process.env.PYSPARK_PYTHON };

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "als-spark-python-"));
  const venv = await ensurePythonVenv("spark");
  const lib = path.join(venv, "lib");
  const py = (await readdir(lib)).find((d) => d.startsWith("python"));
  const sparkHome = path.join(lib, py ?? "python3", "site-packages", "pyspark");
  const venvPython = path.join(venv, "bin", "python");
  const script = async (name: string, text: string) => {
    const file = path.join(root, name);
    await writeFile(file, `#!/bin/sh\n${text}\n`);
    await chmod(file, 0o755);
    return file;
  };
  // Without its site-packages the venv's Python has pyspark (spark-submit puts it on PYTHONPATH) but no numpy.
  pythons.withoutNumpy = await script("python-without-numpy", `exec "${venvPython}" -S "$@"`);
  const fake = path.join(root, "numpy-raises");
  await mkdir(path.join(fake, "numpy"), { recursive: true });
  await writeFile(path.join(fake, "numpy", "__init__.py"), "raise ModuleNotFoundError(\"No module named 'numpy'\")\n");
  pythons.numpyRaises = await script("python-numpy-raises", `PYTHONPATH="${fake}\${PYTHONPATH:+:$PYTHONPATH}" exec "${venvPython}" "$@"`);
  process.env.SPARK_HOME = sparkHome;
  ratingsDir = await syntheticRatingsDir(root, "synth", { rows: 500, users: 20, movies: 30 });
  cluster = await startSparkCluster({ sparkHome, port: freePort, workers: 1, coresPerWorker: 1, memoryPerWorker: "512m" });
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
  for (const [key, value] of [
    ["SPARK_HOME", saved.home],
    ["PYSPARK_PYTHON", saved.python],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await rm(root, { recursive: true, force: true });
});

/** Fits on the cluster with `python`; the error it ends with. */
async function failedFit(python: string, out: string): Promise<unknown> {
  process.env.PYSPARK_PYTHON = python;
  const params = resolveAlsParams({
    als_rank: 2,
    als_max_iter: 1,
    als_engine: "spark",
    spark_master: cluster?.master,
    spark_conf: "spark.ui.enabled=false,spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
  });
  return alsSpark(ratingsDir, params, out, { cacheDir: path.join(root, "cache") }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe("a Spark application that fails inside Python", () => {
  it("pyspark.ml without numpy: exit 1 with the Python exception and its frames, nothing published", async () => {
    const out = path.join(root, "factors-a");
    const error = await failedFit(pythons.withoutNumpy, out);
    expect(error).toBeInstanceOf(SparkApplicationError);
    expect(exitCodeFor(error)).toBe(1);
    const message = String((error as Error).message);
    expect(message).toMatch(/^the Spark application failed: ModuleNotFoundError: No module named 'numpy'\n {2}at File ".*pyspark\/ml\//);
    expect(message).not.toMatch(/INFO|without a result/);
    expect(existsSync(out)).toBe(false);
  }, 300_000);

  it("a Python that fails before the job can report: the traceback spark-submit printed, nothing published", async () => {
    const out = path.join(root, "factors-b");
    const error = await failedFit(pythons.numpyRaises, out);
    expect(error).toBeInstanceOf(SparkApplicationError);
    expect(exitCodeFor(error)).toBe(1);
    const message = String((error as Error).message);
    expect(message).toMatch(/^spark-submit fit ended with exit 1: the job's Python raised ModuleNotFoundError: No module named 'numpy'\n/);
    expect(message).toMatch(/at File ".*numpy-raises\/numpy\/__init__\.py", line 1/);
    expect(message).not.toMatch(/INFO|without a result/);
    expect(existsSync(out)).toBe(false);
  }, 300_000);
});
