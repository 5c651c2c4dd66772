#!/usr/bin/env node
/**
 * `pnpm demo`: the pipeline on synthetic data (offline), then what a person gets out of it: the
 * top movies for a user from the run's model and one predicted rating. Needs `pnpm build` first.
 * Extra arguments go to `ms run` (e.g. `pnpm demo -P keras_epochs=5`).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = path.join(root, "packages/driver/dist/bin.js");
if (!existsSync(bin)) {
  process.stderr.write(`demo: ${bin} is missing; run 'pnpm build' first\n`);
  process.exit(4);
}

function ms(args) {
  process.stderr.write(`\n$ ms ${args.join(" ")}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

ms(["run", "--dataset", "synthetic", ...process.argv.slice(2)]);
ms(["recommend", "--user", "1", "--top", "5"]);
ms(["predict", "--user", "1", "--movie", "50", "--model", "als"]);
