#!/usr/bin/env node
/**
 * `pnpm bench [etl|als|keras|keras-parity|driver|hits|compare|quality|ranking|oof|spark|remote|rank|serve|recommend ...]`: runs the named benchmarks (all by default), each printing a
 * table and writing it under tools/bench/results/.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const all = [
  "etl",
  "als",
  "keras",
  "keras-parity",
  "driver",
  "hits",
  "compare",
  "quality",
  "ranking",
  "oof",
  "spark",
  "remote",
  "rank",
  "serve",
  "recommend",
];
/** A benchmark is NAME/bench.mjs, or DIR/SCRIPT.mjs for a name DIR-SCRIPT (keras-parity: keras/parity.mjs). */
const scriptOf = (name) => (name.includes("-") ? path.join(here, ...name.split("-", 2)) + ".mjs" : path.join(here, name, "bench.mjs"));
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : all;
let failed = false;
for (const name of wanted) {
  const script = scriptOf(name);
  if (!existsSync(script)) {
    process.stderr.write(`no benchmark named ${name} (have: ${all.join(", ")})\n`);
    failed = true;
    continue;
  }
  const r = spawnSync(process.execPath, [script], { stdio: "inherit" });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
