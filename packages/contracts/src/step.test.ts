/**
 * What a step definition gives the driver besides running: the MLflow entry point its child run
 * is named by and its text on the run's summary line, each defaulting when the definition is silent.
 */
import { describe, expect, it } from "vitest";
import { defineStep, metricsText, type StepOutput } from "./step.js";

const base = {
  code: { package: "@ms/contracts", version: "0" },
  params: {},
  inputs: {},
  outputs: { out: "demo" },
  run: () => Promise.resolve(),
};
const outputs: Record<string, StepOutput> = { out: { kind: "demo", dir: "/x", digest: "sha256:0", source: "mirror" } };

describe("a step's entry point and headline", () => {
  it("default to the step's name and to every metric", () => {
    const step = defineStep({ ...base, name: "demo" });
    expect(step.entryPoint).toBe("demo");
    expect(step.headline({ rows: 1000, test_rmse: 0.912345678, broken: null }, outputs)).toBe("rows=1000 test_rmse=0.9123");
  });

  it("come from the definition when it gives them", () => {
    const step = defineStep({
      ...base,
      name: "demo",
      entryPoint: "train_demo",
      headline: (metrics, out) => `source=${String(out.out.source)} ${metricsText(metrics, ["test_rmse"])}`,
    });
    expect(step.entryPoint).toBe("train_demo");
    expect(step.headline({ rows: 1000, test_rmse: 0.5 }, outputs)).toBe("source=mirror test_rmse=0.5");
  });

  it("metricsText keeps the order asked for and leaves out what is missing", () => {
    expect(metricsText({ a: 1, b: 2.000001, c: 3 }, ["c", "missing", "b"])).toBe("c=3 b=2");
    expect(metricsText({})).toBe("");
  });
});
