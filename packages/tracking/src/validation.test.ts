/**
 * The key, value and path rules against MLflow's own (mlflow/utils/validation.py).
 */
import { BadParameterError } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { validateArtifactPath, validateKey, validateMetrics, validateParamValue, validateStatus, validateTagValue } from "./validation.js";

describe("validateKey", () => {
  it.each(["loss", "val/loss", "a-b_c.d e", "über", "x".repeat(250), "a.b..c"])("accepts %j", (k) => {
    expect(validateKey("metric", k)).toBe(k);
  });
  it.each([
    ["", /non-empty/],
    ["a:b", /may only contain/],
    ["a\\b", /may only contain/],
    ["tab\tkey", /may only contain/],
    ["/abs", /must not start with '\/'/],
    ["..", /must not start with '\.\.'/],
    ["..x", /must not start with '\.\.'/],
    ["a/../b", /'\.\.' path segment/],
    ["a/./b", /'\.' path segment/],
    [".", /'\.' path segment/],
    ["a//b", /empty path segments/],
    ["a/", /empty path segments/],
    ["x".repeat(251), /limit of 250/],
  ])("rejects %j", (k, why) => {
    expect(() => validateKey("param", k)).toThrow(BadParameterError);
    expect(() => validateKey("param", k)).toThrow(why);
  });
});

describe("values", () => {
  it("enforces MLflow's value lengths in characters, not UTF-16 units", () => {
    expect(validateParamValue("p", "é".repeat(6000))).toHaveLength(6000);
    expect(validateParamValue("p", "😀".repeat(6000))).toHaveLength(12000);
    expect(() => validateParamValue("p", "x".repeat(6001))).toThrow(/6001 characters, over MLflow's limit of 6000/);
    expect(validateTagValue("t", "x".repeat(8000))).toHaveLength(8000);
    expect(() => validateTagValue("t", "x".repeat(8001))).toThrow(/limit of 8000/);
    expect(validateParamValue("p", 0.1)).toBe("0.1");
    expect(validateParamValue("p", true)).toBe("true");
    expect(() => validateParamValue("p", { a: 1 })).toThrow(/string, number or boolean/);
  });

  it("accepts non-finite metric values and fills step and timestamp", () => {
    const [m] = validateMetrics([{ key: "m", value: Number.NaN }], 42);
    expect(m).toEqual({ key: "m", value: Number.NaN, step: 0, timestamp: 42 });
    expect(() => validateMetrics([{ key: "m", value: 1, timestamp: -1 }])).toThrow(/timestamp/);
  });

  it("keeps artifact paths inside the run", () => {
    expect(validateArtifactPath("model/v1/")).toBe("model/v1");
    expect(validateArtifactPath(undefined)).toBe("");
    for (const bad of ["../x", "a/../../x", "/etc", "a\\b"]) expect(() => validateArtifactPath(bad)).toThrow(BadParameterError);
  });

  it("knows the statuses a run can end with", () => {
    expect(validateStatus("KILLED", true)).toBe("KILLED");
    expect(() => validateStatus("RUNNING", true)).toThrow(/FINISHED, FAILED, KILLED/);
    expect(() => validateStatus("finished")).toThrow(BadParameterError);
  });
});
