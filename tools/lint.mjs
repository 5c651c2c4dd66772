#!/usr/bin/env node
/**
 * The project's own lint: the conventions a type checker cannot see. Every source file opens with
 * a module docblock; no deep imports into another package (`@ms/x/...` or `../../x`); libraries
 * never write to stdout (that belongs to `--json`), so `console.log` is allowed only in bins.
 * Usage: node tools/lint.mjs <package dir>
 */
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(process.argv[2] ?? ".");
const problems = [];
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
  lines.forEach((line, i) => {
    const deep = line.match(/from\s+["'](@ms\/[^"'/]+\/[^"']+)["']/);
    if (deep) problems.push(`${rel}:${i + 1}: deep import ${deep[1]}; import the package's public API`);
    const cross = line.match(/from\s+["']((?:\.\.\/){2,}(?:packages\/)?[a-z]+\/src[^"']*)["']/);
    if (cross) problems.push(`${rel}:${i + 1}: relative import into another package (${cross[1]})`);
    const isTest = /\.test\.ts$|__tests__/.test(file);
    const isBin = /bin\.ts$/.test(file);
    if (!isTest && !isBin && /\bconsole\.log\(/.test(line)) problems.push(`${rel}:${i + 1}: console.log in library code (stdout is reserved for --json)`);
  });
}
walk(path.join(root, "src"));
if (problems.length) {
  process.stderr.write(problems.join("\n") + "\n");
  process.exit(1);
}
