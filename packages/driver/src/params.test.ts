/**
 * `-P` parameters: the list comes from the step definitions' schemas, values are typed by them
 * and validated by each step's resolver, and errors carry the driver's names.
 */
import { BadParameterError } from "@ms/contracts";
import { ALS_DEFAULTS, ALS_PARAM_NAMES } from "@ms/als";
import { ETL_DEFAULTS } from "@ms/etl";
import { KERAS_DEFAULTS } from "@ms/keras";
import { describe, expect, it } from "vitest";
import { joinParamPairs } from "./cli.js";
import { buildCatalog, parseAssignments, resolveParams, type Resolution } from "./params.js";
import { PIPELINE } from "./steps.js";

const resolveWith = (raw: Record<string, string>) => resolveParams(PIPELINE, raw);
const stepOf = (r: Resolution, name: string) => r.steps.find((b) => b.step.name === name)!;
const keyParams = (name: string, r: Resolution) => stepOf(r, name).keyParams;

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

describe("the parameter catalog", () => {
  it("has every field of every step's defaults, under seed-style names", async () => {
    const catalog = buildCatalog(PIPELINE);
    const names = catalog.map((s) => s.name);
    for (const name of ["max_row_limit", "split_prop", "seed", "als_rank", "als_max_iter", "als_reg_param", "als_nonnegative", "als_cold_start_strategy", "als_num_threads", "keras_hidden_units", "keras_epochs", "keras_batch_size", "keras_learning_rate", "keras_patience", "keras_backend", "synthetic_rows"]) {
      expect(names).toContain(name);
    }
    for (const field of Object.keys(KERAS_DEFAULTS)) expect(names).toContain(`keras_${snake(field)}`);
    for (const field of Object.keys(ALS_DEFAULTS)) expect(catalog.some((s) => s.step === "als" && s.field === field)).toBe(true);
    for (const field of Object.keys(ETL_DEFAULTS)) expect(catalog.some((s) => s.step === "etl" && s.field === field)).toBe(true);
    expect(Object.keys(ALS_PARAM_NAMES).every((f) => catalog.some((s) => s.step === "als" && s.field === f))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });

  it("keeps als_num_threads and where Spark runs out of the cache key, and everything else in it", async () => {
    expect(buildCatalog(PIPELINE).filter((s) => !s.inKey).map((s) => s.name)).toEqual(["als_num_threads", "spark_master", "spark_conf", "spark_deploy_mode", "spark_staging"]);
    expect(buildCatalog(PIPELINE).find((s) => s.name === "als_engine")?.inKey).toBe(true);
    const a = keyParams("als", resolveWith({ als_num_threads: "1" }));
    const b = keyParams("als", resolveWith({ als_num_threads: "2" }));
    expect(a).toEqual(b);
    expect(a).not.toHaveProperty("numThreads");
    expect(keyParams("als", resolveWith({ als_rank: "5" }))).not.toEqual(a);
  });
});

describe("resolving -P values", () => {
  it("types values from the defaults and fills in the rest", async () => {
    const r = resolveWith({ als_max_iter: "3", max_row_limit: "-1", als_nonnegative: "true", keras_learning_rate: "1e-3", keras_backend: "cpu", seed: "7" });
    expect(stepOf(r, "als").params).toMatchObject({ maxIter: 3, nonnegative: true, seed: 7, rank: ALS_DEFAULTS.rank });
    expect(stepOf(r, "etl").params).toMatchObject({ maxRowLimit: -1 });
    expect(stepOf(r, "keras").params).toMatchObject({ learningRate: 1e-3, backend: "cpu", seed: 7, hiddenUnits: KERAS_DEFAULTS.hiddenUnits });
    expect(r.flat.als_max_iter).toBe(3);
  });

  it("keras_seed overrides the shared seed for keras only", async () => {
    const r = resolveWith({ seed: "7", keras_seed: "9" });
    expect(stepOf(r, "als").params.seed).toBe(7);
    expect(stepOf(r, "keras").params.seed).toBe(9);
  });

  it("unknown names list the valid ones; bad values name the driver's parameter", async () => {
    const unknown = (() => {
      try {
        resolveWith({ hidden_units: "3" });
      } catch (error) {
        return error as BadParameterError;
      }
    })();
    expect(unknown).toBeInstanceOf(BadParameterError);
    expect(unknown!.parameter).toBe("hidden_units");
    expect(unknown!.message).toContain("keras_hidden_units");
    expect(() => resolveWith({ als_rank: "x" })).toThrow(/als_rank/);
    expect(() => resolveWith({ als_rank: "2.5" })).toThrow(/parameter als_rank: .*integer/);
    expect(() => resolveWith({ keras_epochs: "0" })).toThrow(/parameter keras_epochs:/);
    expect(() => resolveWith({ split_prop: "1.5" })).toThrow(/parameter split_prop:/);
    expect(() => resolveWith({ keras_backend: "gpu" })).toThrow(/keras_backend: "gpu" is not one of auto/);
    expect(() => resolveWith({ als_cold_start_strategy: "keep" })).toThrow(/parameter als_cold_start_strategy:/);
    expect(() => resolveWith({ max_row_limit: "0" })).toThrow(/parameter max_row_limit:/);
    expect(() => resolveWith({ synthetic_rows: "-5" })).toThrow(/synthetic_rows/);
  });

  it("parses -P assignments, including negative values given as a separate token", () => {
    expect(parseAssignments(["a=1", "b=-1", "c=x=y", "a=2"])).toEqual({ a: "2", b: "-1", c: "x=y" });
    expect(() => parseAssignments(["novalue"])).toThrow(BadParameterError);
    expect(joinParamPairs(["-P", "max_row_limit", "-1", "-P", "a=1", "--json"])).toEqual(["-P", "max_row_limit=-1", "-P", "a=1", "--json"]);
  });
});
