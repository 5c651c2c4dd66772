/**
 * @ms/etl reused alone: pack it and @ms/contracts with pnpm, install the tarballs into an empty
 * folder outside the repository with npm, and run its bins from there.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SMALL_CSV, tempDir, writeText } from "./__tests__/helpers.js";

const run = promisify(execFile);
const packages = path.resolve(__dirname, "../..");

describe("packed @ms/etl", () => {
  it("installs from tarballs into an empty folder and runs ms-etl and ms-download", async () => {
    const tarballs = await tempDir("ms-pack-");
    for (const pkg of ["contracts", "etl"]) {
      await run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: path.join(packages, pkg) });
    }
    const { stdout: listing } = await run("ls", [tarballs]);
    const files = listing
      .trim()
      .split("\n")
      .map((f) => path.join(tarballs, f));
    expect(files).toHaveLength(2);
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
