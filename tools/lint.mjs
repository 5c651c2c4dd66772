#!/usr/bin/env node
/**
 * One package's lint, run as its `lint` script (so Nx caches it per package and `pnpm --filter
 * @ms/x lint` checks all of one package). Three parts:
 * - the conventions no linter rule covers: every source file opens with a module docblock; no deep
 *   import into another package (`@ms/x/...` or `../../x/src`) except a subpath the package
 *   declares in its `exports` (such as `@ms/tracking/testing`); no source file over 500 lines
 *   (tests, `*.test.ts`, are exempt: a suite of cases may run longer); one test layout: a test
 *   sits beside the code it tests, and `src/__tests__/` holds only the helpers tests share;
 * - Biome (`biome check`, biome.jsonc): its rules, import loops and stdout in libraries included,
 *   and the formatting;
 * - ESLint (eslint.config.mjs) for typescript-eslint's no-floating-promises and
 *   no-misused-promises, which need the TypeScript program (hence `lint` runs after `^build`).
 * Usage: node tools/lint.mjs <package dir>
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { ESLint } from "eslint";

const MAX_FILE_LINES = 500;
const root = path.resolve(process.argv[2] ?? ".");
const workspace = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const problems = [];

/** `@ms/x/sub` is public when package @ms/x lists "./sub" in its exports map. */
const declared = new Map();
function isDeclaredExport(spec) {
  const [, name, sub] = /^(@ms\/[^/]+)\/(.+)$/.exec(spec) ?? [];
  if (!name) return false;
  if (!declared.has(name)) {
    let exports = {};
    for (const dir of ["packages", "tools"]) {
      const file = path.join(workspace, dir, name.slice("@ms/".length), "package.json");
      if (fs.existsSync(file)) exports = JSON.parse(fs.readFileSync(file, "utf8")).exports ?? {};
    }
    declared.set(name, new Set(Object.keys(exports)));
  }
  return declared.get(name).has(`./${sub}`);
}

function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) check(full);
  }
}

function check(file) {
  const text = fs.readFileSync(file, "utf8");
  const rel = path.relative(process.cwd(), file);
  const body = text.replace(/^#!.*\n/, "").trimStart();
  if (!body.startsWith("/**")) problems.push(`${rel}:1: missing module docblock (/** ... */ at the top)`);
  const lines = text.split("\n");
  const count = text.endsWith("\n") ? lines.length - 1 : lines.length;
  if (/__tests__\/.*\.test\.ts$/.test(file))
    problems.push(`${rel}:1: a test sits beside the code it tests (src/**/*.test.ts); __tests__/ holds test helpers only`);
  if (!/\.test\.ts$/.test(file) && count > MAX_FILE_LINES)
    problems.push(`${rel}:1: ${count} lines; a source file holds at most ${MAX_FILE_LINES}`);
  lines.forEach((line, i) => {
    const deep = line.match(/from\s+["'](@ms\/[^"'/]+\/[^"']+)["']/);
    if (deep && !isDeclaredExport(deep[1])) problems.push(`${rel}:${i + 1}: deep import ${deep[1]}; import the package's public API`);
    const cross = line.match(/from\s+["']((?:\.\.\/){2,}(?:packages\/)?[a-z]+\/src[^"']*)["']/);
    if (cross) problems.push(`${rel}:${i + 1}: relative import into another package (${cross[1]})`);
  });
}

walk(path.join(root, "src"));
if (problems.length) process.stderr.write(`${problems.join("\n")}\n`);

const biomeBin = createRequire(import.meta.url).resolve("@biomejs/biome/bin/biome");
const biome = spawnSync(process.execPath, [biomeBin, "check", "--error-on-warnings", "--no-errors-on-unmatched", root], {
  stdio: "inherit",
});

const eslint = new ESLint({ cwd: workspace, errorOnUnmatchedPattern: false });
const results = await eslint.lintFiles([path.join(root, "src")]);
const report = (await eslint.loadFormatter("stylish")).format(results);
if (report) process.stderr.write(report);

const eslintFailed = results.some((r) => r.errorCount + r.warningCount > 0);
if (problems.length || biome.status !== 0 || eslintFailed) process.exit(1);
