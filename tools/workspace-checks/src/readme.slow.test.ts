/**
 * The README's "each step also runs alone" example, run as written (each bin by its name, found
 * through the packages' `bin` maps), in an empty folder: every command exits 0 and each step reads
 * what the one before it wrote, so the example chains.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "../../..");

/** Bin name -> built script, from every package's package.json. */
function bins(): Map<string, string> {
  const out = new Map<string, string>();
  for (const dir of readdirSync(path.join(root, "packages"))) {
    const file = path.join(root, "packages", dir, "package.json");
    if (!existsSync(file)) continue;
    const pkg: { bin?: Record<string, string> } = JSON.parse(readFileSync(file, "utf8"));
    for (const [name, script] of Object.entries(pkg.bin ?? {})) out.set(name, path.join(root, "packages", dir, script));
  }
  return out;
}

/** The shell lines of the fenced block after the README's "Each step also runs alone:". */
function exampleLines(): string[] {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const at = readme.indexOf("Each step also runs alone:");
  expect(at).toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(block).not.toBeNull();
  return (block?.[1] ?? "")
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter(Boolean);
}

const work = mkdtempSync(path.join(tmpdir(), "ms-readme-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the README's step-alone example", () => {
  it("runs as written, each step reading the one before", () => {
    const known = bins();
    const lines = exampleLines();
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) {
      const [name, ...args] = line.split(/\s+/);
      const script = known.get(name);
      expect(script, `${name} is a bin of a package`).toBeDefined();
      execFileSync(process.execPath, [script ?? "", ...args], {
        cwd: work,
        env: { ...process.env, MS_CACHE_DIR: path.join(work, "cache"), LOG_LEVEL: "error" },
        stdio: ["ignore", "ignore", "pipe"],
        timeout: 300_000,
      });
    }
    for (const out of ["out/ratings", "out/als", "out/fm", "out/keras"])
      expect(existsSync(path.join(work, out, "manifest.json"))).toBe(true);
  }, 600_000);
});
