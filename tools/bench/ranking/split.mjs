/**
 * The ranking bench's split: exactly the pipeline's. After an `ms run` of one fold, the etl
 * output (the "ratings" artifact) is read back with @ms/etl's reader, and the split spec the als
 * step recorded in its manifest (which every later step reuses) is applied with @ms/contracts'
 * `splitMaskOf`, the function the steps themselves call. So the peers fit and are scored on the
 * very rows the pipeline's models were, whatever the protocol (kfold here).
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseJsonFileSync, SplitSpecSchema, splitMaskOf } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import * as v from "valibot";

const AlsManifest = v.object({ details: v.object({ split: SplitSpecSchema }) });

/** The output directory of `step`'s artifact `output` in an `ms run --json` report; an error naming both when absent. */
export function outputDir(report, step, output) {
  const dir = report.steps.find((s) => s.step === step)?.outputs?.[output]?.dir;
  if (typeof dir !== "string") throw new Error(`ms run report: no ${step} step with output ${output}`);
  return dir;
}

/** Rows of one side of a split, as parallel typed columns. */
function pick(cols, mask, side) {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] === side) n++;
  const out = { users: new Int32Array(n), items: new Int32Array(n), ratings: new Float32Array(n) };
  for (let i = 0, j = 0; i < mask.length; i++) {
    if (mask[i] !== side) continue;
    out.users[j] = cols.userIds[i];
    out.items[j] = cols.movieIds[i];
    out.ratings[j] = cols.ratings[i];
    j++;
  }
  return out;
}

/** The train and test rows of a run's split: the etl output masked by the spec in the als manifest. */
export async function splitOfRun(report) {
  const etlDir = outputDir(report, "etl", "ratings");
  const alsDir = outputDir(report, "als", "factors");
  const spec = parseJsonFileSync(path.join(alsDir, "manifest.json"), AlsManifest).details.split;
  const cols = await readRatingsColumns(etlDir);
  const mask = splitMaskOf(spec, cols);
  return { spec, train: pick(cols, mask, 1), test: pick(cols, mask, 0) };
}

/** Writes `userId,movieId,rating` (the peers' input) atomically. */
export function writeRows(file, rows) {
  const lines = ["userId,movieId,rating"];
  for (let i = 0; i < rows.users.length; i++) lines.push(`${rows.users[i]},${rows.items[i]},${rows.ratings[i]}`);
  writeFileSync(`${file}.tmp`, `${lines.join("\n")}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Reads what `writeRows` wrote. */
export function readRows(file) {
  const [header, ...lines] = readFileSync(file, "utf8").trimEnd().split("\n");
  if (header !== "userId,movieId,rating") throw new Error(`${file}:1: expected the header userId,movieId,rating`);
  const out = { users: new Int32Array(lines.length), items: new Int32Array(lines.length), ratings: new Float32Array(lines.length) };
  lines.forEach((line, i) => {
    const [u, m, r] = line.split(",");
    out.users[i] = Number(u);
    out.items[i] = Number(m);
    out.ratings[i] = Number(r);
  });
  return out;
}
