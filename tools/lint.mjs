#!/usr/bin/env node
/**
 * The project's own lint: the conventions a type checker cannot see. Every source file opens with
 * a module docblock; no deep imports into another package (`@ms/x/...` or `../../x`), except a
 * subpath the package declares in its `exports` (such as `@ms/tracking/testing`); libraries
 * never write to stdout (that belongs to `--json`), so `console.log` is allowed only in bins; and
 * no import loop between a package's modules (files that import each other, directly or around a
 * ring), counting type-only imports too, since a loop of types is still a knot to untie.
 * Usage: node tools/lint.mjs <package dir>
 */
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(process.argv[2] ?? ".");
const problems = [];
/** file -> the package-local files it imports */
const graph = new Map();
const workspace = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
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
  const local = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => path.resolve(path.dirname(file), m[1].replace(/\.js$/, ".ts")));
  graph.set(file, local.filter((f) => fs.existsSync(f)));
  lines.forEach((line, i) => {
    const deep = line.match(/from\s+["'](@ms\/[^"'/]+\/[^"']+)["']/);
    if (deep && !isDeclaredExport(deep[1])) problems.push(`${rel}:${i + 1}: deep import ${deep[1]}; import the package's public API`);
    const cross = line.match(/from\s+["']((?:\.\.\/){2,}(?:packages\/)?[a-z]+\/src[^"']*)["']/);
    if (cross) problems.push(`${rel}:${i + 1}: relative import into another package (${cross[1]})`);
    const isTest = /\.test\.ts$|__tests__/.test(file);
    const isBin = /bin\.ts$/.test(file);
    if (!isTest && !isBin && /\bconsole\.log\(/.test(line)) problems.push(`${rel}:${i + 1}: console.log in library code (stdout is reserved for --json)`);
  });
}
walk(path.join(root, "src"));

// Depth-first search for a back edge: each loop is reported once, as the ring of files it passes.
const state = new Map();
const stack = [];
const seenLoops = new Set();
function visit(file) {
  state.set(file, "open");
  stack.push(file);
  for (const next of graph.get(file) ?? []) {
    if (state.get(next) === "open") {
      const ring = stack.slice(stack.indexOf(next)).map((f) => path.relative(process.cwd(), f));
      const id = [...ring].sort().join(" ");
      if (!seenLoops.has(id)) {
        seenLoops.add(id);
        problems.push(`${ring[0]}:1: import loop: ${[...ring, ring[0]].join(" -> ")}`);
      }
    } else if (!state.has(next)) visit(next);
  }
  stack.pop();
  state.set(file, "done");
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);
if (problems.length) {
  process.stderr.write(problems.join("\n") + "\n");
  process.exit(1);
}
