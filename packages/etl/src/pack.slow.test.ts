/**
 * @ms/etl reused alone: pack it and the @ms packages it depends on (read from the package.json
 * files, transitively) with pnpm, install the tarballs into an empty folder outside the
 * repository with npm, and run its bins from there.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SMALL_CSV, tempDir, writeText } from "./__tests__/helpers.js";

const run = promisify(execFile);
const packages = path.resolve(__dirname, "../..");

/** `dir` and the directories of the @ms packages it depends on, transitively. */
function withWorkspaceDeps(dir: string, found = new Set<string>()): Set<string> {
  if (found.has(dir)) return found;
  found.add(dir);
  const pkg: { dependencies?: Record<string, string> } = JSON.parse(readFileSync(path.join(packages, dir, "package.json"), "utf8"));
  for (const name of Object.keys(pkg.dependencies ?? {})) if (name.startsWith("@ms/")) withWorkspaceDeps(name.slice("@ms/".length), found);
  return found;
}

describe("packed @ms/etl", () => {
  it("installs from tarballs into an empty folder and runs ms-etl and ms-download", async () => {
    const tarballs = await tempDir("ms-pack-");
    const dirs = [...withWorkspaceDeps("etl")];
    expect(dirs).toContain("contracts");
    for (const pkg of dirs) {
      await run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: path.join(packages, pkg) });
    }
    const { stdout: listing } = await run("ls", [tarballs]);
    const files = listing
      .trim()
      .split("\n")
      .map((f) => path.join(tarballs, f));
    expect(files).toHaveLength(dirs.length);
    const app = await tempDir("ms-app-");
    await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...files], { cwd: app, timeout: 300_000 });
    const csv = await writeText(app, "ratings.csv", SMALL_CSV);
    const { stdout } = await run(
      path.join(app, "node_modules", ".bin", "ms-etl"),
      ["--ratings-csv", csv, "--out", path.join(app, "out"), "--json"],
      { cwd: app },
    );
    expect(JSON.parse(stdout).metrics.rows).toBe(5);
    const dl = await run(
      path.join(app, "node_modules", ".bin", "ms-download"),
      ["--dataset", "synthetic", "--rows", "500", "--cache-dir", path.join(app, "cache"), "--json"],
      { cwd: app },
    );
    expect(JSON.parse(dl.stdout).source).toBe("synthetic");
    // The library API works from the installed package too.
    const script = path.join(app, "use.mjs");
    await writeFile(
      script,
      `import { readRatingsColumns } from "@ms/etl";\nconst c = await readRatingsColumns(${JSON.stringify(path.join(app, "out"))});\nprocess.stdout.write(String(c.rows));\n`,
    );
    const used = await run(process.execPath, [script], { cwd: app });
    expect(used.stdout.trim()).toBe("5");
  }, 400_000);
});
