#!/usr/bin/env node
/**
 * Quality experiments for @ms/keras: test RMSE of the network under named options, against the
 * ALS model's own test RMSE on the same split and the same test rows.
 * Usage: node tools/bench/keras/quality.mjs --ratings ETL_DIR --als ALS_DIR [--only "NAME;NAME"]
 * (build first: pnpm --filter @ms/keras --filter @ms/als --filter @ms/etl build)
 */
import { parseArgs } from "node:util";
import { trainNetwork, resolveKerasParams, joinRatings } from "@ms/keras";
import { readFactors } from "@ms/als";
import { readRatingsColumns } from "@ms/etl";

const { values } = parseArgs({ options: { ratings: { type: "string" }, als: { type: "string" }, only: { type: "string" }, backend: { type: "string" } } });
if (!values.ratings || !values.als) {
  process.stderr.write("usage: quality.mjs --ratings ETL_DIR --als ALS_DIR [--only 'NAME;NAME']\n");
  process.exit(2);
}
const factors = await readFactors(values.als);
const ratings = await readRatingsColumns(values.ratings);
const split = { seed: factors.details.seed, splitProp: factors.details.splitProp };

// ALS's own prediction on exactly the test rows the network is scored on.
const joined = joinRatings(ratings, factors, split);
let se = 0;
for (const r of joined.testRows) {
  let s = 0;
  const mo = joined.movieRow[r] * factors.rank;
  const uo = joined.userRow[r] * factors.rank;
  for (let j = 0; j < factors.rank; j++) s += factors.itemFactors[mo + j] * factors.userFactors[uo + j];
  se += (s - joined.ratings[r]) ** 2;
}
const alsRmse = Math.sqrt(se / joined.testRows.length);

const experiments = [
  ["seed defaults", {}],
  ["output bias = mean", { outputBias: "mean" }],
  ["lr 1e-3", { learningRate: 1e-3 }],
  ["lr 1e-3, bias mean", { learningRate: 1e-3, outputBias: "mean" }],
  ["lr 1e-3, bias mean, 20 epochs", { learningRate: 1e-3, outputBias: "mean", epochs: 20 }],
  ["batch 32, bias mean", { batchSize: 32, outputBias: "mean" }],
  ["batch 32, lr 1e-3, bias mean, 20 epochs", { batchSize: 32, learningRate: 1e-3, outputBias: "mean", epochs: 20 }],
  ["factors+dot", { features: "factors+dot" }],
  ["factors+dot, bias mean", { features: "factors+dot", outputBias: "mean" }],
  ["factors+dot, bias mean, 5 epochs", { features: "factors+dot", outputBias: "mean", epochs: 5 }],
  ["factors+dot, bias mean, batch 256", { features: "factors+dot", outputBias: "mean", batchSize: 256 }],
  ["factors+dot, bias mean, lr 3e-4", { features: "factors+dot", outputBias: "mean", learningRate: 3e-4 }],
  ["factors+dot, lr 1e-3, bias mean, 20 epochs", { features: "factors+dot", learningRate: 1e-3, outputBias: "mean", epochs: 20 }],
];
const only = values.only ? new Set(values.only.split(";")) : undefined;
const rows = [];
for (const [name, options] of experiments) {
  if (only && !only.has(name)) continue;
  const params = resolveKerasParams({ ...options, backend: values.backend ?? "auto" });
  const t = await trainNetwork(ratings, factors, split, params);
  t.model.dispose();
  rows.push([name, t.metrics.test_rmse, t.metrics.test_rmse - alsRmse, t.metrics.epochs_run, t.metrics.seconds, t.backend]);
  process.stderr.write(`${name}: test RMSE ${t.metrics.test_rmse.toFixed(4)}\n`);
}
console.log(`ALS test RMSE on the same ${joined.testRows.length} test rows: ${alsRmse.toFixed(4)}  (rank ${factors.rank}, split seed ${split.seed}, splitProp ${split.splitProp})\n`);
console.log("| options | test RMSE | vs ALS | epochs run | seconds | backend |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r[0]} | ${r[1].toFixed(4)} | ${r[2] >= 0 ? "+" : ""}${r[2].toFixed(4)} | ${r[3]} | ${r[4].toFixed(1)} | ${r[5]} |`);
