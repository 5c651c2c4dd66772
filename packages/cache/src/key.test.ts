/**
 * The cache key's code identity: a step's key must change when any `@ms/*` package it imports is
 * rebuilt with other code, or a third-party runtime dependency is upgraded, and only then.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cacheKey, codeIdentityAt } from "./key.js";

let root: string;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A pnpm-like tree: root/node_modules/<name> with package.json and dist/index.js. */
async function pkg(name: string, version: string, deps: Record<string, string>, code: string): Promise<string> {
  const dir = path.join(root, "node_modules", name);
  await mkdir(path.join(dir, "dist"), { recursive: true });
  await writeFile(path.join(dir, "package.json"), JSON.stringify({ name, version, dependencies: deps }));
  await writeFile(path.join(dir, "dist", "index.js"), code);
  return dir;
}

async function tree(contractsCode: string, duckdbVersion: string) {
  root = await mkdtemp(path.join(tmpdir(), "ms-key-"));
  await pkg("@ms/contracts", "0.1.0", {}, contractsCode);
  await pkg("@duckdb/node-api", duckdbVersion, {}, "export {}");
  const etl = await pkg("@ms/etl", "0.1.0", { "@ms/contracts": "workspace:^", "@duckdb/node-api": duckdbVersion }, "export const etl = 1;");
  const als = await pkg("@ms/als", "0.1.0", { "@ms/etl": "workspace:^", "@ms/contracts": "workspace:^" }, "export const als = 1;");
  const ids = { etl: await codeIdentityAt(etl), als: await codeIdentityAt(als) };
  await rm(root, { recursive: true, force: true });
  return ids;
}

describe("code identity", () => {
  it("covers every @ms package a step imports, transitively, and third-party versions", async () => {
    const base = await tree("export const split = 1;", "1.5.6");
    expect(Object.keys(base.als.closure.ms).sort()).toEqual(["@ms/als", "@ms/contracts", "@ms/etl"]);
    expect(base.als.closure.thirdParty).toEqual({ "@duckdb/node-api": "1.5.6" });

    const same = await tree("export const split = 1;", "1.5.6");
    expect(same.etl.codeDigest).toBe(base.etl.codeDigest);
    expect(same.als.codeDigest).toBe(base.als.codeDigest);

    const rebuiltContracts = await tree("export const split = 2;", "1.5.6");
    expect(rebuiltContracts.etl.codeDigest).not.toBe(base.etl.codeDigest);
    expect(rebuiltContracts.als.codeDigest).not.toBe(base.als.codeDigest);

    const upgradedDuckdb = await tree("export const split = 1;", "1.5.7");
    expect(upgradedDuckdb.etl.codeDigest).not.toBe(base.etl.codeDigest);
    expect(upgradedDuckdb.als.codeDigest).not.toBe(base.als.codeDigest);
  });

  it("keys differ by step, code, parameters and input digests, and nothing else", () => {
    const base = { step: "als", version: "0.1.0", codeDigest: "sha256:a", params: { rank: 4 }, inputs: { ratings: "sha256:r" as const } };
    const key = cacheKey(base);
    expect(cacheKey({ ...base, params: { rank: 4 } })).toBe(key);
    for (const changed of [
      { step: "keras" },
      { version: "0.2.0" },
      { codeDigest: "sha256:b" },
      { params: { rank: 5 } },
      { inputs: { ratings: "sha256:s" as const } },
    ]) {
      expect(cacheKey({ ...base, ...changed })).not.toBe(key);
    }
  });
});
