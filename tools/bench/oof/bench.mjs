#!/usr/bin/env node
/**
 * The cost of the fm step's out-of-fold work against the als step's own time, on synthetic
 * ratings (20M by default, `MS_OOF_ROWS`): the als step (whole step, as the driver runs it), then
 * the fm step with its defaults (the out-of-fold model `auto` picks for that size), alternated
 * `MS_OOF_ROUNDS` times. Prints the table and writes tools/bench/results/<date>-oof.md.
 */
import { als, resolveAlsParams } from "@ms/als";
import { etl, resolveEtlParams } from "@ms/etl";
import { fm, readFmArtifact, resolveFmParams } from "@ms/fm";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { fmt, gitCommit, machine, path, ROOT, table, WORK, writeResult } from "../lib.mjs";

const ROWS = Number(process.env.MS_OOF_ROWS ?? 20_000_000);
const ROUNDS = Number(process.env.MS_OOF_ROUNDS ?? 1);
const work = path.join(WORK, "oof");
mkdirSync(work, { recursive: true });
const log = (m) => process.stderr.write(`oof: ${m}\n`);

const doc = JSON.parse(
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, "packages/etl/dist/download-bin.js"),
      "--dataset",
      "synthetic",
      "--rows",
      String(ROWS),
      "--cache-dir",
      path.join(work, "cache"),
      "--json",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 },
  ),
);
const etlDir = path.join(work, `etl-${ROWS}`);
rmSync(etlDir, { recursive: true, force: true });
await etl({ ratingsCsv: doc.outputs.ratings.path }, resolveEtlParams({ max_row_limit: -1 }), etlDir);
// MS_OOF_MODEL=bayes|als measures a model other than the one `auto` takes for this size.
const params = resolveFmParams({
  ...(process.env.MS_OOF_MODEL ? { fm_model: process.env.MS_OOF_MODEL } : {}),
  ...(process.env.MS_OOF_FOLDS ? { fm_folds: Number(process.env.MS_OOF_FOLDS) } : {}),
});
const rows = [];
for (let round = 1; round <= ROUNDS; round++) {
  const alsDir = path.join(work, `als-${ROWS}`);
  rmSync(alsDir, { recursive: true, force: true });
  let t = performance.now();
  const a = await als({ ratings: etlDir }, resolveAlsParams(), alsDir);
  const alsSeconds = (performance.now() - t) / 1000;
  log(`round ${round}: als step ${fmt(alsSeconds, 1)} s (fit ${fmt(a.metrics.fit_seconds, 1)} s)`);
  const fmDir = path.join(work, `fm-${ROWS}`);
  rmSync(fmDir, { recursive: true, force: true });
  t = performance.now();
  await fm({ ratings: etlDir, factors: alsDir }, params, fmDir);
  const oofSeconds = (performance.now() - t) / 1000;
  const oof = (await readFmArtifact(fmDir)).details;
  log(`round ${round}: fm step (${oof.model}) ${fmt(oofSeconds, 1)} s`);
  rows.push([
    String(round),
    ROWS.toLocaleString("en"),
    oof.model,
    String(params.fm_folds),
    fmt(alsSeconds, 1),
    fmt(a.metrics.fit_seconds, 1),
    fmt(oofSeconds, 1),
    fmt(oofSeconds / alsSeconds, 2),
  ]);
}
const body = table(["round", "ratings", "oof model", "folds", "als step s", "als fit s", "out-of-fold s", "out-of-fold / als step"], rows);
process.stdout.write(`\n${body}\n`);
writeResult(
  "oof",
  [
    "# The fm step's out-of-fold work against the als step",
    "",
    `${machine()}; commit ${gitCommit()}. \`MS_OOF_ROWS=${ROWS} node tools/bench/oof/bench.mjs\` (pnpm build first). Defaults of both steps; the out-of-fold model is the one \`auto\` takes for this size (bayes up to 2M training ratings, als above). Target: out-of-fold / als step <= 2.`,
    "",
    body,
    "",
  ].join("\n"),
);
