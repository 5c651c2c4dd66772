#!/usr/bin/env node
/**
 * A PNG of a run report as headless chromium shows it (for the README's picture):
 *   node tools/report-screenshot.mjs path/to/report.html docs/report.png [width]
 * Uses Debian's chromium (tools/ensure-chromium.sh) with the flags of the report's browser test.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const [report, out, width = "1200"] = process.argv.slice(2);
if (!report || !out) {
  process.stderr.write("usage: node tools/report-screenshot.mjs REPORT.html OUT.png [WIDTH]\n");
  process.exit(2);
}
const executablePath = execFileSync("bash", [path.join(here, "ensure-chromium.sh")], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
})
  .trim()
  .split("\n")
  .pop();
const require = createRequire(path.join(here, "../packages/report/package.json"));
const { chromium } = require("playwright-core");
const profile = mkdtempSync(path.join(os.tmpdir(), "ms-chromium-"));
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: flags,
  viewport: { width: Number(width), height: 900 },
});
try {
  const page = await context.newPage();
  await page.route("**/*", (route) => (route.request().url().startsWith("file:") ? route.continue() : route.abort()));
  await page.goto(pathToFileURL(path.resolve(report)).href, { waitUntil: "load" });
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`${out}\n`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
