/**
 * The workspace as the design card promises it: `nx affected` picks a touched package and its
 * dependents, as the packages' package.json files declare them, and nothing else; every package
 * under packages/ is publishable with an explicit exports map, `sideEffects: false`, its own
 * version, a CHANGELOG.md in what it ships, and a bin that is a built JavaScript file; Nx never
 * stops at its usage-data prompt. The package list is packages/ itself: a new package needs no
 * edit here.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "../../..");

interface PackageJson {
  name: string;
  private?: boolean;
  version: string;
  sideEffects?: boolean;
  exports: Record<string, unknown>;
  bin?: Record<string, string>;
  files?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const readJson = (file: string): unknown => JSON.parse(readFileSync(file, "utf8"));

/** Directory name -> package.json, for every package under packages/. */
const PACKAGES = new Map<string, PackageJson>(
  readdirSync(path.join(root, "packages"), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(root, "packages", d.name, "package.json")))
    .map((d) => [d.name, readJson(path.join(root, "packages", d.name, "package.json")) as PackageJson]),
);
const NAMES = new Set([...PACKAGES.values()].map((p) => p.name));

/** The @ms packages a package declares it uses, in any dependency field (Nx counts them all). */
function declaredDeps(pkg: PackageJson): string[] {
  const fields = [pkg.dependencies, pkg.devDependencies, pkg.peerDependencies, pkg.optionalDependencies];
  return fields.flatMap((f) => Object.keys(f ?? {})).filter((d) => NAMES.has(d));
}

/** `name` and every package that depends on it, directly or through others. */
function withDependents(name: string): string[] {
  const found = new Set([name]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const pkg of PACKAGES.values()) {
      if (!found.has(pkg.name) && declaredDeps(pkg).some((d) => found.has(d))) {
        found.add(pkg.name);
        grew = true;
      }
    }
  }
  return [...found].sort();
}

function affected(file: string): string[] {
  const out = execFileSync("pnpm", ["exec", "nx", "show", "projects", "--affected", `--files=${file}`, "--json"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NX_DAEMON: "false", NX_TUI: "false" },
  });
  // Tools (bench, interop, these checks) depend on packages too; the promise is about packages.
  return (JSON.parse(out) as string[]).filter((p) => NAMES.has(p)).sort();
}

describe("the package graph", () => {
  it("finds the packages, and @ms/contracts at the bottom of it", () => {
    expect(NAMES.has("@ms/contracts")).toBe(true);
    expect(NAMES.has("@ms/driver")).toBe(true);
    expect(declaredDeps(PACKAGES.get("contracts")!)).toEqual([]);
    // The steps and the driver build on contracts, so a contracts change re-tests them all.
    expect(withDependents("@ms/contracts")).toEqual(
      expect.arrayContaining(["@ms/als", "@ms/driver", "@ms/etl", "@ms/keras", "@ms/tracking"]),
    );
  });
});

describe("nx affected", () => {
  it.each([...PACKAGES.keys()])("a change in @ms/%s's sources picks it and its dependents, and nothing else", (dir) => {
    const name = PACKAGES.get(dir)!.name;
    expect(affected(`packages/${dir}/src/index.ts`)).toEqual(withDependents(name));
  });

  it("keeps the layers apart: a report or S3 change re-tests neither the cache nor the steps", () => {
    expect(affected("packages/report/src/charts.ts")).toEqual(["@ms/driver", "@ms/report"]);
    expect(affected("packages/cache-s3/src/s3-store.ts")).toEqual(["@ms/cache-s3", "@ms/driver"]);
    expect(affected("packages/serve/src/serve.ts")).not.toContain("@ms/cache");
  });

  it("counts a package's README as its input too", () => {
    expect(affected("packages/keras/README.md")).toEqual(withDependents("@ms/keras"));
  });
});

describe("package layout", () => {
  it.each([...PACKAGES.keys()])("@ms/%s tests with the one vitest preset", (dir) => {
    const config = readFileSync(path.join(root, "packages", dir, "vitest.config.ts"), "utf8");
    expect(config).toContain('from "../../tools/vitest-preset.js"');
  });

  it.each([...PACKAGES.keys()])("@ms/%s is publishable with an exports map and built bins", (dir) => {
    const pkg = PACKAGES.get(dir)!;
    expect(pkg.name).toBe(`@ms/${dir}`);
    expect(pkg.private).toBeUndefined();
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", import: "./dist/index.js" });
    // nx release writes each package's CHANGELOG.md; the package ships it.
    expect(pkg.files).toEqual(expect.arrayContaining(["dist", "README.md", "CHANGELOG.md"]));
    for (const bin of Object.values(pkg.bin ?? {})) expect(bin).toMatch(/^\.\/dist\/[\w-]+\.js$/);
    for (const [dep, range] of Object.entries(pkg.dependencies ?? {})) if (dep.startsWith("@ms/")) expect(range).toBe("workspace:^");
  });
});

describe("nx.json", () => {
  it("turns Nx's usage-data prompt off, so the quick start never stops at it in a terminal", () => {
    const nx = readJson(path.join(root, "nx.json")) as { analytics?: unknown };
    expect(nx.analytics).toBe(false);
  });
});
