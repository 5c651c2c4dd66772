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

const { values } = parseArgs({
  options: { ratings: { type: "string" }, als: { type: "string" }, only: { type: "string" }, backend: { type: "string" } },
});
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
  ["output bias = mean", { keras_output_bias: "mean" }],
  ["lr 1e-3", { keras_learning_rate: 1e-3 }],
  ["lr 1e-3, bias mean", { keras_learning_rate: 1e-3, keras_output_bias: "mean" }],
  ["lr 1e-3, bias mean, 20 epochs", { keras_learning_rate: 1e-3, keras_output_bias: "mean", keras_epochs: 20 }],
  ["batch 32, bias mean", { keras_batch_size: 32, keras_output_bias: "mean" }],
  [
    "batch 32, lr 1e-3, bias mean, 20 epochs",
    { keras_batch_size: 32, keras_learning_rate: 1e-3, keras_output_bias: "mean", keras_epochs: 20 },
  ],
  ["factors+dot", { keras_features: "factors+dot" }],
  ["factors+dot, bias mean", { keras_features: "factors+dot", keras_output_bias: "mean" }],
  ["factors+dot, bias mean, 5 epochs", { keras_features: "factors+dot", keras_output_bias: "mean", keras_epochs: 5 }],
  ["factors+dot, bias mean, batch 256", { keras_features: "factors+dot", keras_output_bias: "mean", keras_batch_size: 256 }],
  ["factors+dot, bias mean, lr 3e-4", { keras_features: "factors+dot", keras_output_bias: "mean", keras_learning_rate: 3e-4 }],
  [
    "factors+dot, lr 1e-3, bias mean, 20 epochs",
    { keras_features: "factors+dot", keras_learning_rate: 1e-3, keras_output_bias: "mean", keras_epochs: 20 },
  ],
];
const only = values.only ? new Set(values.only.split(";")) : undefined;
const rows = [];
for (const [name, options] of experiments) {
  if (only && !only.has(name)) continue;
  const params = resolveKerasParams({ ...options, keras_backend: values.backend ?? "auto" });
  const t = await trainNetwork(ratings, factors, split, params);
  t.model.dispose();
  rows.push([name, t.metrics.test_rmse, t.metrics.test_rmse - alsRmse, t.metrics.epochs_run, t.metrics.seconds, t.backend]);
  process.stderr.write(`${name}: test RMSE ${t.metrics.test_rmse.toFixed(4)}\n`);
}
console.log(
  `ALS test RMSE on the same ${joined.testRows.length} test rows: ${alsRmse.toFixed(4)}  (rank ${factors.rank}, split seed ${split.seed}, splitProp ${split.splitProp})\n`,
);
console.log("| options | test RMSE | vs ALS | epochs run | seconds | backend |");
console.log("|---|---|---|---|---|---|");
for (const r of rows)
  console.log(`| ${r[0]} | ${r[1].toFixed(4)} | ${r[2] >= 0 ? "+" : ""}${r[2].toFixed(4)} | ${r[3]} | ${r[4].toFixed(1)} | ${r[5]} |`);
