#!/usr/bin/env node
/**
 * Adds up the vitest JSON reports of every package and prints one closing line,
 * `Tests: N passed, N failed, N skipped`, so CI can read the outcome of the whole run.
 * Failed tests are listed again at the very end, with the first lines of their message,
 * because CI keeps only the tail of a long log.
 * Exits non-zero when a test failed or when no test ran at all.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(new URL("../..", import.meta.url).pathname);
let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [];
const failures = [];
for (const group of ["packages", "tools"]) {
  for (const name of readdirSync(path.join(root, group))) {
    const report = path.join(root, group, name, ".test-results", "vitest.json");
    if (!existsSync(report)) continue;
    const r = JSON.parse(readFileSync(report, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
    for (const file of r.testResults ?? []) {
      for (const t of file.assertionResults ?? []) {
        if (t.status !== "failed") continue;
        const message = (t.failureMessages ?? []).join("\n").split("\n").slice(0, 6).join("\n    ");
        failures.push(`FAILED ${path.relative(root, file.name)} > ${t.fullName}\n    ${message}`);
      }
      // A file that failed to load has no assertion results, only a message.
      if (file.status === "failed" && !(file.assertionResults ?? []).length)
        failures.push(`FAILED ${path.relative(root, file.name)}\n    ${String(file.message).split("\n").slice(0, 6).join("\n    ")}`);
    }
    rows.push(
      `${`${group}/${name}`.padEnd(22)} ${String(r.numPassedTests).padStart(5)} passed ${String(r.numFailedTests).padStart(3)} failed ${String(r.numPendingTests).padStart(3)} skipped`,
    );
  }
}
process.stdout.write(
  `\n${failures.join("\n")}${failures.length ? "\n" : ""}\n${rows.join("\n")}\n\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`,
);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
