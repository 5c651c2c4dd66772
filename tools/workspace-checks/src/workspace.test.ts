/**
 * The workspace as the design card promises it: `nx affected` picks a touched package and its
 * dependents and nothing else; every step package is publishable with an explicit exports map,
 * `sideEffects: false`, its own version, and a bin that is a built JavaScript file.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "../../..");
const PACKAGES = ["contracts", "cache", "cache-s3", "etl", "als", "keras", "tracking", "driver"];

function affected(file: string): string[] {
  const out = execFileSync("pnpm", ["exec", "nx", "show", "projects", "--affected", `--files=${file}`, "--json"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NX_DAEMON: "false", NX_TUI: "false" },
  });
  // Tools (bench, interop, these checks) depend on packages too; the promise is about packages.
  return (JSON.parse(out) as string[]).filter((p) => PACKAGES.includes(p.replace("@ms/", ""))).sort();
}

describe("nx affected", () => {
  it("runs a touched package and its dependents, and nothing else", () => {
    // @ms/als (its Spark tests) and @ms/keras (its TensorFlow parity test) use @ms/tracking/testing's
    // helpers as a dev dependency, so a tracking change re-tests them and what depends on them.
    expect(affected("packages/tracking/src/index.ts")).toEqual(["@ms/als", "@ms/driver", "@ms/keras", "@ms/tracking"]);
    expect(affected("packages/tracking/src/file-store.ts")).not.toContain("@ms/etl");
    expect(affected("packages/als/src/index.ts")).toEqual(["@ms/als", "@ms/driver", "@ms/keras"]);
    expect(affected("packages/etl/src/etl.ts")).toEqual(["@ms/als", "@ms/driver", "@ms/etl", "@ms/keras"]);
    expect(affected("packages/contracts/src/split.ts")).toEqual(PACKAGES.map((p) => `@ms/${p}`).sort());
    expect(affected("packages/keras/README.md")).toEqual(["@ms/driver", "@ms/keras"]);
    // The S3 remote is a leaf behind the driver; the cache is also used by the steps for its layout.
    expect(affected("packages/cache-s3/src/s3-store.ts")).toEqual(["@ms/cache-s3", "@ms/driver"]);
    expect(affected("packages/cache/src/store.ts")).toEqual(["@ms/als", "@ms/cache", "@ms/cache-s3", "@ms/driver", "@ms/etl", "@ms/keras"]);
  });
});

describe("package layout", () => {
  it.each(PACKAGES)("@ms/%s is publishable with an exports map and built bins", (name) => {
    const pkg = JSON.parse(readFileSync(path.join(root, "packages", name, "package.json"), "utf8"));
    expect(pkg.name).toBe(`@ms/${name}`);
    expect(pkg.private).toBeUndefined();
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
    for (const bin of Object.values<string>(pkg.bin ?? {})) expect(bin).toMatch(/^\.\/dist\/[\w-]+\.js$/);
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (dep.startsWith("@ms/")) expect(pkg.dependencies[dep]).toBe("workspace:^");
  });
});
