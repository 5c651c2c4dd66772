/**
 * The code identity of the driver's real step packages, resolved from the driver as `ms run`
 * resolves them (@ms/cache's `codeIdentity`, given the driver's module URL).
 */
import { codeIdentity } from "@ms/cache";
import { describe, expect, it } from "vitest";

describe("codeIdentity", () => {
  it("of the real step packages includes @ms/contracts and their runtime libraries", async () => {
    const keras = await codeIdentity("@ms/keras", import.meta.url);
    expect(Object.keys(keras.closure.ms)).toEqual(expect.arrayContaining(["@ms/keras", "@ms/contracts", "@ms/als", "@ms/etl"]));
    expect(keras.closure.thirdParty["@duckdb/node-api"]).toMatch(/^\d+\.\d+/);
    expect(Object.keys(keras.closure.thirdParty).some((d) => d.startsWith("@tensorflow/"))).toBe(true);
  });
});
