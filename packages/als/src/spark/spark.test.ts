/**
 * The Spark engine's parameter handling, without Spark: credentials and secrets refused (every
 * parameter is recorded in tracking), `spark_conf` values that hold commas, which masters count
 * as this machine's, the step's cache key (engine in it, the master URL not), and the Python
 * exception picked out of what a job printed.
 */
import { describe, expect, it } from "vitest";
import { alsStep } from "../step.js";
import { resolveAlsParams } from "../params.js";
import { masterIsLocal, parseSparkConf, stripCredentials } from "./conf.js";
import { pythonException } from "./submit.js";

describe("Spark parameters", () => {
  it("refuses bad values, naming the driver's parameter", () => {
    expect(() => resolveAlsParams({ als_engine: "spark", spark_master: "spark://user:pw@host:7077" })).toThrow(/spark_master.*credentials/);
    expect(() => resolveAlsParams({ als_engine: "spark", spark_master: "k8s://https://u:p@api:6443" })).toThrow(
      /spark_master.*credentials/,
    );
    expect(() => resolveAlsParams({ als_engine: "spark", spark_master: "" })).toThrow(/spark_master/);
    expect(() => resolveAlsParams({ als_engine: "spark", spark_conf: "spark.hadoop.fs.s3a.secret.key=abc" })).toThrow(/spark_conf.*secret/);
    expect(() => resolveAlsParams({ als_engine: "spark", spark_conf: "nonsense" })).toThrow(/spark_conf/);
    expect(() => resolveAlsParams({ als_engine: "spark", spark_num_blocks: 0 })).toThrow(/spark_num_blocks/);
    expect(() => resolveAlsParams({ als_engine: "spark", spark_staging: " " })).toThrow(/spark_staging/);
  });

  it("accepts every split with the Spark engine (the job computes each) and records its spec", () => {
    for (const split of ["hash", "time", "file"] as const) expect(resolveAlsParams({ als_engine: "spark", split }).split).toBe(split);
    expect(resolveAlsParams({ als_engine: "spark", split: "kfold", folds: 3, fold: 2 })).toMatchObject({ split: "kfold", fold: 2 });
  });

  it("keeps commas inside a conf value", () => {
    expect(parseSparkConf("spark.jars.packages=org.apache.hadoop:hadoop-aws:3.4.1,com.example:x:1,spark.executor.cores=2")).toEqual([
      ["spark.jars.packages", "org.apache.hadoop:hadoop-aws:3.4.1,com.example:x:1"],
      ["spark.executor.cores", "2"],
    ]);
    expect(parseSparkConf(undefined)).toEqual([]);
  });

  it("strips credentials from URLs at any nesting", () => {
    expect(stripCredentials("k8s://https://u:p@api:6443")).toBe("k8s://https://api:6443");
    expect(stripCredentials("spark://a:b@h:7077,c:d@h2:7077")).toBe("spark://h:7077,h2:7077");
    expect(() => resolveAlsParams({ als_engine: "spark", spark_master: "spark://h:7077,c:d@h2:7077" })).toThrow(/credentials/);
    expect(stripCredentials("yarn")).toBe("yarn");
  });

  it("knows which masters share this machine's disk", () => {
    expect(masterIsLocal(undefined)).toBe(true);
    expect(masterIsLocal("local[2]")).toBe(true);
    expect(masterIsLocal("local")).toBe(true);
    expect(masterIsLocal("spark://127.0.0.1:7077")).toBe(true);
    expect(masterIsLocal("yarn")).toBe(false);
    expect(masterIsLocal("spark://cluster.example:7077")).toBe(false);
  });

  it("puts the engine in the cache key and leaves the master, conf, deploy mode and staging out", () => {
    const bind = (o: Record<string, string>) => alsStep.bind(new Map(Object.entries({ als_rank: "4", ...o })));
    const local = bind({});
    const spark = bind({
      als_engine: "spark",
      spark_master: "spark://127.0.0.1:7077",
      spark_conf: "spark.executor.memory=1g",
      spark_staging: "/tmp/x",
      spark_deploy_mode: "client",
    });
    const other = bind({ als_engine: "spark", spark_master: "local[2]" });
    expect(local.keyParams.als_engine).toBe("local");
    expect(spark.keyParams.als_engine).toBe("spark");
    expect(spark.keyParams).toEqual(other.keyParams);
    expect(spark.keyParams).not.toEqual(local.keyParams);
    for (const k of ["spark_master", "spark_conf", "spark_staging", "spark_deploy_mode"]) expect(spark.keyParams).not.toHaveProperty(k);
    const names = alsStep.params.map((p) => p.name);
    for (const n of ["als_engine", "spark_master", "spark_conf", "spark_deploy_mode", "spark_staging"]) expect(names).toContain(n);
  });
});

describe("pythonException", () => {
  /** What spark-submit's stdout holds when the job's Python raises: protocol lines, then Python's traceback. */
  const printed = (exception: string[], frames = 3) => [
    JSON.stringify({ ms: "started", applicationId: "app-1" }),
    "Traceback (most recent call last):",
    ...Array.from({ length: frames }, (_, i) => [`  File "/job/frame${i}.py", line ${i + 10}, in f${i}`, `    call${i}()`]).flat(),
    ...exception,
  ];

  it("takes the last traceback's exception and its innermost frames", () => {
    const lines = [
      ...printed(["KeyError: 'first'", "", "During handling of the above exception, another exception occurred:", ""]),
      ...printed(["ModuleNotFoundError: No module named 'numpy'"], 4),
    ];
    const found = pythonException(lines);
    expect(found?.split("\n")).toEqual([
      "ModuleNotFoundError: No module named 'numpy'",
      '  at File "/job/frame2.py", line 12, in f2',
      '  at File "/job/frame3.py", line 13, in f3',
    ]);
  });

  it("keeps a message that runs over several lines, and finds nothing without a traceback", () => {
    expect(pythonException(printed(["ValueError: bad", "second line of it"], 1))).toBe(
      'ValueError: bad\nsecond line of it\n  at File "/job/frame0.py", line 10, in f0',
    );
    expect(pythonException(["26/12/07 INFO SparkContext: Running Spark", "an Error somewhere in a log line"])).toBeUndefined();
    expect(pythonException(["Traceback (most recent call last):", '  File "x.py", line 1'])).toBeUndefined();
  });
});
