#!/usr/bin/env node
/**
 * Adds up the vitest JSON reports of every package and prints one closing line,
 * `Tests: N passed, N failed, N skipped`, so CI can read the outcome of the whole run.
 * Exits non-zero when a test failed or when no test ran at all.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(new URL("../..", import.meta.url).pathname);
let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [];
for (const group of ["packages", "tools"]) {
  for (const name of readdirSync(path.join(root, group))) {
    const report = path.join(root, group, name, ".test-results", "vitest.json");
    if (!existsSync(report)) continue;
    const r = JSON.parse(readFileSync(report, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
    rows.push(`${`${group}/${name}`.padEnd(22)} ${String(r.numPassedTests).padStart(5)} passed ${String(r.numFailedTests).padStart(3)} failed ${String(r.numPendingTests).padStart(3)} skipped`);
  }
}
process.stdout.write(`\n${rows.join("\n")}\n\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
