/**
 * `rank_lambda` and `rank_popularity_penalty`: `auto` (the default) or a number in range; anything
 * else is the package's parameter error naming the parameter, from `-P` text and from a library call.
 */
import { BadParameterError, parseAssignments, resolveParams } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { RANK_DEFAULTS, rankParams, resolveRankParams } from "./params.js";
import { rankStep } from "./step.js";

const fromText = (...assignments: string[]) => resolveParams([rankStep], parseAssignments(assignments)).flat;

describe("rank_lambda and rank_popularity_penalty", () => {
  it("default to auto and keep a number as a number", () => {
    expect(RANK_DEFAULTS.rank_lambda).toBe("auto");
    expect(resolveRankParams({})).toMatchObject({ rank_lambda: "auto", rank_popularity_penalty: "auto" });
    expect(fromText("rank_lambda=250", "rank_popularity_penalty=0.1")).toMatchObject({ rank_lambda: 250, rank_popularity_penalty: 0.1 });
    expect(fromText("rank_lambda=AUTO")).toMatchObject({ rank_lambda: "auto" });
    expect(resolveRankParams({ rank_lambda: 400, rank_popularity_penalty: 0 })).toMatchObject({
      rank_lambda: 400,
      rank_popularity_penalty: 0,
    });
  });

  it.each([
    ["rank_lambda", "-1"],
    ["rank_lambda", "0"],
    ["rank_lambda", "abc"],
    ["rank_popularity_penalty", "abc"],
    ["rank_popularity_penalty", "-0.1"],
    ["rank_popularity_penalty", "3"],
  ])("refuses %s=%s, naming it", (name, text) => {
    const error = (() => {
      try {
        fromText(`${name}=${text}`);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BadParameterError);
    expect((error as BadParameterError).parameter).toBe(name);
    expect((error as Error).message).toContain(name);
  });

  it("refuses a bad value from a library call too", () => {
    expect(() => resolveRankParams({ rank_lambda: -1 })).toThrow(BadParameterError);
    expect(() => resolveRankParams({ rank_lambda: -1 })).toThrow(/rank_lambda/);
    expect(() => resolveRankParams({ rank_popularity_penalty: "abc" as never })).toThrow(/rank_popularity_penalty/);
    expect(() => rankParams.rank_popularity_penalty.parse("abc", "rank_popularity_penalty")).toThrow(/not a number or auto/);
  });
});
