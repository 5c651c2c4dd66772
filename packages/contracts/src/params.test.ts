/**
 * The parameter schema: text parsed and range-checked under the parameter's one name, defaults
 * filled, a step's cross check applied once, unknown names refused with the closest suggestion
 * (inherited names included), and the help line stating each default once.
 */
import { describe, expect, it } from "vitest";
import { BadParameterError } from "./errors.js";
import { closestName, describeParam, param, paramResolver, paramSpecs, parseRawParams, type ParamDefs } from "./params.js";
import { defineStep } from "./step.js";

interface P {
  demo_rank: number;
  demo_share: number;
  demo_mode: "a" | "b";
  demo_flag: boolean;
  demo_rows?: number;
}

const defs: ParamDefs<P> = {
  demo_rank: param.integer({ default: 4, min: 1, max: 64, doc: "rank" }),
  demo_share: param.number({ default: 0.5, min: 0, max: 1, minExclusive: true, maxExclusive: true, doc: "share" }),
  demo_mode: param.choice(["a", "b"] as const, { default: "a", doc: "mode" }),
  demo_flag: param.boolean({ default: false, doc: "flag" }),
  demo_rows: param.integer({ min: 1, defaultDoc: "all of them", doc: "rows" }),
};

const error = (f: () => unknown): BadParameterError => {
  try {
    f();
  } catch (e) {
    if (e instanceof BadParameterError) return e;
    throw e;
  }
  throw new Error("no error");
};

describe("parameter schemas", () => {
  it("parse text, check ranges and choices, and name the parameter", () => {
    const raw = (o: Record<string, string>) => parseRawParams(defs, new Map(Object.entries(o)));
    expect(raw({ demo_rank: " 8 ", demo_share: "0.25", demo_mode: "b", demo_flag: "yes" })).toEqual({
      demo_rank: 8,
      demo_share: 0.25,
      demo_mode: "b",
      demo_flag: true,
    });
    expect(error(() => raw({ demo_rank: "65" })).message).toBe("parameter demo_rank: must be an integer in [1, 64], got 65");
    expect(error(() => raw({ demo_rank: "1.5" })).parameter).toBe("demo_rank");
    expect(error(() => raw({ demo_share: "1" })).message).toBe("parameter demo_share: must be a number in (0, 1), got 1");
    expect(error(() => raw({ demo_mode: "c" })).message).toContain('"c" is not one of a, b');
    expect(error(() => raw({ demo_flag: "maybe" })).parameter).toBe("demo_flag");
  });

  it("resolve typed values once: defaults filled, the cross check applied, unknown names refused", () => {
    let crossCalls = 0;
    const resolve = paramResolver(defs, (p) => {
      crossCalls++;
      if (p.demo_mode === "b" && p.demo_rank > 10) throw new BadParameterError("demo_rank", "must be at most 10 with demo_mode b");
      return p;
    });
    expect(resolve({ demo_rank: 2 })).toEqual({ demo_rank: 2, demo_share: 0.5, demo_mode: "a", demo_flag: false });
    expect(crossCalls).toBe(1);
    expect(error(() => resolve({ demo_mode: "b", demo_rank: 20 })).parameter).toBe("demo_rank");
    expect(error(() => resolve({ demo_rank: Number.NaN })).parameter).toBe("demo_rank");
    expect(error(() => resolve({ rank: 2 } as Partial<P>)).message).toBe("parameter rank: unknown parameter; did you mean demo_rank?");
  });

  it("refuse __proto__ and other inherited names as unknown", () => {
    for (const name of ["__proto__", "constructor", "toString"]) {
      expect(error(() => parseRawParams(defs, new Map([[name, "1"]]))).message).toContain("unknown parameter");
    }
    const step = defineStep({
      name: "demo",
      code: { package: "@ms/contracts", version: "0" },
      params: defs,
      inputs: {},
      outputs: { out: "demo" },
      run: () => Promise.resolve(),
    });
    expect(error(() => step.bind(new Map([["__proto__", "x"]]))).parameter).toBe("__proto__");
  });

  it("suggest the closest name only when it is close", () => {
    const names = ["als_max_iter", "als_rank", "keras_hidden_units", "split_prop"];
    expect(closestName("max_iter", names)).toBe("als_max_iter");
    expect(closestName("als_rnak", names)).toBe("als_rank");
    expect(closestName("splitprop", names)).toBe("split_prop");
    expect(closestName("max-iter", ["als-max-iter"])).toBe("als-max-iter");
    expect(closestName("something_else", names)).toBeUndefined();
  });

  it("bind -P text into params keyed by the same names, keeping the key's parameters apart", () => {
    const step = defineStep({
      name: "demo",
      code: { package: "@ms/contracts", version: "0" },
      params: { ...defs, demo_threads: param.integer({ default: 2, min: 1, doc: "threads", notInKey: "results do not depend on it" }) },
      inputs: {},
      outputs: { out: "demo" },
      run: () => Promise.resolve(),
    });
    const bound = step.bind(new Map([["demo_rank", "3"]]));
    expect(bound.params).toEqual({ demo_rank: 3, demo_share: 0.5, demo_mode: "a", demo_flag: false, demo_threads: 2 });
    expect(bound.keyParams).not.toHaveProperty("demo_threads");
    expect(step.params.map((s) => s.name)).toEqual(["demo_rank", "demo_share", "demo_mode", "demo_flag", "demo_rows", "demo_threads"]);
  });

  it("describe each default once, with the range", () => {
    const specs = paramSpecs("demo", defs);
    expect(describeParam(specs[0])).toBe("rank; default 4; in [1, 64]");
    expect(describeParam(specs[1])).toBe("share; default 0.5; in (0, 1)");
    expect(describeParam(specs[2])).toBe("mode; default a; one of a|b");
    expect(describeParam(specs[4])).toBe("rows; default all of them; >= 1");
    for (const s of specs) expect(describeParam(s)).not.toContain("no default");
  });
});
