/**
 * `-P` parameters: the list comes from the step definitions' schemas, a parameter has one name
 * from `-P` to the step's params, values are typed and range-checked by the schema, and errors
 * name the parameter as the user wrote it.
 */
import { BadParameterError, describeParam } from "@ms/contracts";
import { ALS_DEFAULTS } from "@ms/als";
import { ETL_DEFAULTS } from "@ms/etl";
import { FM_DEFAULTS } from "@ms/fm";
import { KERAS_DEFAULTS } from "@ms/keras";
import { describe, expect, it } from "vitest";
import { joinParamPairs, paramHelp } from "./commands/run.js";
import { buildCatalog, parseAssignments, resolveParams, type Resolution } from "@ms/contracts";
import { PIPELINE } from "./steps.js";

const resolveWith = (raw: Record<string, string>) => resolveParams(PIPELINE, new Map(Object.entries(raw)));
const stepOf = (r: Resolution, name: string) => r.steps.find((b) => b.step.name === name)!;
const keyParams = (name: string, r: Resolution) => stepOf(r, name).keyParams;
const failure = (raw: Record<string, string> | Map<string, string>): BadParameterError => {
  try {
    resolveParams(PIPELINE, raw instanceof Map ? raw : new Map(Object.entries(raw)));
  } catch (error) {
    if (error instanceof BadParameterError) return error;
    throw error;
  }
  throw new Error("resolved without an error");
};

describe("the parameter catalog", () => {
  it("has every parameter of every step under its one name, the seed's", () => {
    const catalog = buildCatalog(PIPELINE);
    const names = catalog.map((s) => s.name);
    for (const name of [
      "max_row_limit",
      "split_prop",
      "seed",
      "als_rank",
      "als_max_iter",
      "als_reg_param",
      "als_nonnegative",
      "als_cold_start_strategy",
      "als_num_threads",
      "keras_hidden_units",
      "keras_epochs",
      "keras_batch_size",
      "keras_learning_rate",
      "keras_patience",
      "keras_backend",
      "synthetic_rows",
      "fm_model",
      "fm_max_samples",
      "fm_implicit_user",
      "fm_implicit_movie",
      "fm_time",
      "fm_output",
    ]) {
      expect(names).toContain(name);
    }
    for (const name of Object.keys(KERAS_DEFAULTS)) expect(catalog.some((s) => s.step === "keras" && s.name === name)).toBe(true);
    for (const name of Object.keys(ALS_DEFAULTS)) expect(catalog.some((s) => s.step === "als" && s.name === name)).toBe(true);
    for (const name of Object.keys(FM_DEFAULTS)) expect(catalog.some((s) => s.step === "fm" && s.name === name)).toBe(true);
    for (const name of Object.keys(ETL_DEFAULTS)) expect(catalog.some((s) => s.step === "etl" && s.name === name)).toBe(true);
    // One parameter several steps read is declared once: the evaluation split and its test file in
    // @ms/contracts, the engine and where Spark runs in @ms/als (the fm step's ALS fold fits read them too),
    // the ranking evaluation's in @ms/rank (the ranking step measures every model with the rank step's k, rule and users).
    expect([...new Set(names.filter((n, i) => names.indexOf(n) !== i))]).toEqual([
      "test_ratings",
      "split",
      "als_engine",
      "spark_master",
      "spark_conf",
      "spark_deploy_mode",
      "spark_staging",
      "spark_num_blocks",
      "split_prop",
      "folds",
      "fold",
      "rank_k",
      "rank_min_rating",
      "rank_eval_users",
      "rank_num_threads",
    ]);
    for (const name of ["split", "split_prop", "folds", "fold", "test_ratings"]) expect(names).toContain(name);
  });

  it("keeps the thread counts and where Spark runs out of the cache key, and everything else in it", () => {
    expect(
      buildCatalog(PIPELINE)
        .filter((s) => !s.inKey)
        .map((s) => s.name),
    ).toEqual([
      "test_ratings",
      "als_num_threads",
      "spark_master",
      "spark_conf",
      "spark_deploy_mode",
      "spark_staging",
      "fm_num_threads",
      "spark_master",
      "spark_conf",
      "spark_deploy_mode",
      "spark_staging",
      "rank_num_threads",
      "rank_num_threads",
    ]);
    expect(buildCatalog(PIPELINE).find((s) => s.name === "als_engine")?.inKey).toBe(true);
    const a = keyParams("als", resolveWith({ als_num_threads: "1" }));
    const b = keyParams("als", resolveWith({ als_num_threads: "2" }));
    expect(a).toEqual(b);
    expect(a).not.toHaveProperty("als_num_threads");
    expect(keyParams("als", resolveWith({ als_rank: "5" }))).not.toEqual(a);
    for (const step of ["rank", "ranking"])
      expect(keyParams(step, resolveWith({ rank_num_threads: "1" })), step).toEqual(
        keyParams(step, resolveWith({ rank_num_threads: "2" })),
      );
  });

  it("declares ranges in the schema, and the help states each default once", () => {
    const spec = (name: string) => buildCatalog(PIPELINE).find((s) => s.name === name)!;
    expect(spec("als_rank")).toMatchObject({ min: 1, max: 1024 });
    expect(spec("split_prop")).toMatchObject({ min: 0, max: 1, minExclusive: true, maxExclusive: true });
    expect(describeParam(spec("split_prop"))).toContain("in (0, 1)");
    expect(describeParam(spec("keras_epochs"))).toContain("default 6 stacked, 3 the seed's features");
    expect(describeParam(spec("keras_batch_size"))).toMatch(/; default 128;/);
    expect(describeParam(spec("als_num_threads"))).toContain("default the number of cores");
    const help = paramHelp();
    for (const line of help.split("\n")) expect(line).not.toMatch(/default [^;]*;.*no default/);
    expect(help).not.toContain("default 128; no default");
  });
});

describe("resolving -P values", () => {
  it("types values by the schema, fills in the rest, and keys them by the -P names", () => {
    const r = resolveWith({
      als_max_iter: "3",
      max_row_limit: "-1",
      als_nonnegative: "true",
      keras_learning_rate: "1e-3",
      keras_backend: "cpu",
      seed: "7",
    });
    expect(stepOf(r, "als").params).toMatchObject({ als_max_iter: 3, als_nonnegative: true, seed: 7, als_rank: ALS_DEFAULTS.als_rank });
    expect(stepOf(r, "etl").params).toMatchObject({ max_row_limit: -1 });
    expect(stepOf(r, "keras").params).toMatchObject({
      keras_learning_rate: 1e-3,
      keras_backend: "cpu",
      keras_seed: 7,
      keras_hidden_units: KERAS_DEFAULTS.keras_hidden_units,
    });
    expect(r.flat.als_max_iter).toBe(3);
    expect(r.flat.keras_epochs).toBe(6);
  });

  it("keras_seed overrides the shared seed for keras only", () => {
    const r = resolveWith({ seed: "7", keras_seed: "9" });
    expect(stepOf(r, "als").params.seed).toBe(7);
    expect(stepOf(r, "keras").params.keras_seed).toBe(9);
  });

  it("an unknown name suggests the closest one and does not list them all", () => {
    const unknown = failure({ max_iter: "3" });
    expect(unknown.parameter).toBe("max_iter");
    expect(unknown.message).toMatch(/unknown parameter; did you mean als_max_iter\?/);
    expect(unknown.message).not.toContain("keras_hidden_units");
    expect(failure({ hidden_units: "3" }).message).toContain("did you mean keras_hidden_units?");
    expect(failure({ als_rnak: "3" }).message).toContain("did you mean als_rank?");
    expect(failure({ zzzzzz: "1" }).message).not.toContain("did you mean");
  });

  it("refuses __proto__ and other inherited names as unknown", () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      const error = failure(parseAssignments([`${name}=x`]));
      expect(error.parameter).toBe(name);
      expect(error.message).toContain("unknown parameter");
    }
  });

  it("bad values name the parameter", () => {
    expect(() => resolveWith({ als_rank: "x" })).toThrow(/parameter als_rank: "x" is not a number/);
    expect(() => resolveWith({ als_rank: "2.5" })).toThrow(/parameter als_rank: .*integer/);
    expect(() => resolveWith({ als_rank: "0" })).toThrow(/parameter als_rank: must be an integer in \[1, 1024\], got 0/);
    expect(() => resolveWith({ keras_epochs: "0" })).toThrow(/parameter keras_epochs:/);
    expect(() => resolveWith({ split_prop: "1.5" })).toThrow(/parameter split_prop: must be a number in \(0, 1\), got 1.5/);
    expect(() => resolveWith({ keras_backend: "gpu" })).toThrow(/keras_backend: "gpu" is not one of auto/);
    expect(() => resolveWith({ als_cold_start_strategy: "keep" })).toThrow(/parameter als_cold_start_strategy:/);
    expect(() => resolveWith({ max_row_limit: "0" })).toThrow(/parameter max_row_limit:/);
    expect(() => resolveWith({ synthetic_rows: "-5" })).toThrow(/parameter synthetic_rows:/);
    expect(() => resolveWith({ fm_max_samples: "5", fm_burn_in: "5" })).toThrow(/parameter fm_burn_in:/);
    expect(() => resolveWith({ fm_model: "svd" })).toThrow(/parameter fm_model: "svd" is not one of auto, bayes, als, none/);
    expect(() => resolveWith({ spark_master: "spark://u:p@h:7077" })).toThrow(/parameter spark_master: holds credentials/);
  });

  it("parses -P assignments into a map, including negative values given as a separate token", () => {
    expect([...parseAssignments(["a=1", "b=-1", "c=x=y", "a=2"])]).toEqual([
      ["a", "2"],
      ["b", "-1"],
      ["c", "x=y"],
    ]);
    expect(() => parseAssignments(["novalue"])).toThrow(BadParameterError);
    expect(joinParamPairs(["-P", "max_row_limit", "-1", "-P", "a=1", "--json"])).toEqual(["-P", "max_row_limit=-1", "-P", "a=1", "--json"]);
  });
});
