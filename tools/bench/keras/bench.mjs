#!/usr/bin/env node
/**
 * Training throughput of @ms/keras's streamed batches vs a bare `model.fit` on in-memory tensors.
 *
 * Data: ml-20m-shaped synthetic ratings (20,000,263 ratings over 138,493 users and 26,744 movies,
 * rank-12 factors, ids joined and split exactly as the step does). Each measurement trains one
 * epoch over the first --samples training rows (default 262,144) so the whole run stays within a
 * few minutes; samples/s does not depend on how many rows an epoch has. The baseline is the same
 * network (same seed) trained by `model.fit(xs, ys, { shuffle: true })` on tensors holding those
 * rows' features, built in the same run; the ratio streamed/baseline is the figure (target >= 0.9).
 *
 * Usage: node tools/bench/keras/bench.mjs [--samples N] [--batch 128,1024] [--repeats 2]
 *        [--backend auto|wasm|cpu] [--full]   (--full also trains one epoch on all training rows
 *        through the step's own trainNetwork and reports peak RSS)
 * Build first: pnpm --filter @ms/keras build
 */
import { parseArgs } from "node:util";
import { buildNetwork, fitNetwork, FeatureAssembler, joinRatings, loadTf, mulberry32, resolveKerasParams, trainNetwork } from "@ms/keras";

const { values } = parseArgs({
  options: {
    samples: { type: "string", default: "262144" },
    batch: { type: "string", default: "128,1024" },
    repeats: { type: "string", default: "2" },
    backend: { type: "string", default: "auto" },
    full: { type: "boolean", default: false },
    ratings: { type: "string", default: "20000263" },
  },
});
const SAMPLES = Number(values.samples);
const BATCHES = values.batch.split(",").map(Number);
const REPEATS = Number(values.repeats);
const ROWS = Number(values.ratings);
const USERS = 138_493;
const MOVIES = 26_744;
const RANK = 12;

function syntheticMl20m() {
  const random = mulberry32(20);
  const userFactors = new Float32Array(USERS * RANK).map(() => (random() - 0.5) * 1.2);
  const itemFactors = new Float32Array(MOVIES * RANK).map(() => (random() - 0.5) * 1.2);
  const userIds = new Int32Array(ROWS);
  const movieIds = new Int32Array(ROWS);
  const ratings = new Float32Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    // Users in file order (as MovieLens files are), movies skewed towards popular ones.
    const u = Math.floor((i / ROWS) * USERS);
    const m = Math.floor(MOVIES * random() ** 2.5);
    userIds[i] = u + 1;
    movieIds[i] = m + 1;
    let s = 3.5;
    for (let k = 0; k < RANK; k++) s += userFactors[u * RANK + k] * itemFactors[m * RANK + k];
    ratings[i] = Math.min(5, Math.max(0.5, Math.round(s * 2) / 2));
  }
  return {
    ratings: { rows: ROWS, userIds, movieIds, ratings },
    factors: {
      rank: RANK,
      userIds: Int32Array.from({ length: USERS }, (_, i) => i + 1),
      userFactors,
      itemIds: Int32Array.from({ length: MOVIES }, (_, i) => i + 1),
      itemFactors,
    },
  };
}

const t0 = performance.now();
const { ratings, factors } = syntheticMl20m();
const split = { seed: 42, splitProp: 0.8 };
const joined = joinRatings(ratings, factors, split);
process.stderr.write(`data: ${ROWS} ratings, ${joined.trainRows.length} training rows (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);

const { tf, backend } = await loadTf(values.backend);
const params = resolveKerasParams({});
const assembler = new FeatureAssembler("factors", factors, joined);
const rows = joined.trainRows.subarray(0, Math.min(SAMPLES, joined.trainRows.length));
const n = rows.length;
const width = assembler.width;

function newModel() {
  return buildNetwork(tf, width, { hiddenUnits: params.hiddenUnits, learningRate: params.learningRate, seed: params.seed, outputBias: 0 });
}

async function streamed(batchSize) {
  const model = newModel();
  const t = performance.now();
  await fitNetwork(tf, model, assembler, rows, new Int32Array(0), { epochs: 1, batchSize, patience: 2, minDelta: 1e-4, seed: 1, shuffle: true });
  const seconds = (performance.now() - t) / 1000;
  model.dispose();
  return n / seconds;
}

async function baseline(batchSize) {
  // The bare Keras way: every feature materialised up front, then model.fit.
  const x = new Float32Array(n * width);
  const y = new Float32Array(n);
  assembler.fill(rows, 0, n, x, y);
  const xs = tf.tensor2d(x, [n, width]);
  const ys = tf.tensor2d(y, [n, 1]);
  const model = newModel();
  const t = performance.now();
  await model.fit(xs, ys, { epochs: 1, batchSize, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - t) / 1000;
  model.dispose();
  xs.dispose();
  ys.dispose();
  return n / seconds;
}

// Warm-up: kernel set-up and JIT, not measured.
{
  const small = rows.subarray(0, 4096);
  const model = newModel();
  await fitNetwork(tf, model, assembler, small, new Int32Array(0), { epochs: 1, batchSize: 128, patience: 2, minDelta: 1e-4, seed: 1, shuffle: true });
  model.dispose();
}

const table = [];
for (const batchSize of BATCHES) {
  let bestS = 0;
  let bestB = 0;
  for (let r = 0; r < REPEATS; r++) {
    // Alternate the order so drift (thermal, GC) does not favour one side.
    if (r % 2 === 0) {
      bestB = Math.max(bestB, await baseline(batchSize));
      bestS = Math.max(bestS, await streamed(batchSize));
    } else {
      bestS = Math.max(bestS, await streamed(batchSize));
      bestB = Math.max(bestB, await baseline(batchSize));
    }
  }
  table.push({ batchSize, streamed: bestS, baseline: bestB });
  process.stderr.write(`batch ${batchSize}: streamed ${Math.round(bestS)}/s, model.fit ${Math.round(bestB)}/s\n`);
}

console.log(`keras training throughput, backend ${backend}, ${n} samples per epoch of ml-20m-shaped data (rank ${RANK}, input width ${width}), best of ${REPEATS}`);
console.log("");
console.log("| batch | streamed fitDataset (samples/s) | bare model.fit in memory (samples/s) | ratio |");
console.log("|---|---|---|---|");
for (const r of table) console.log(`| ${r.batchSize} | ${Math.round(r.streamed)} | ${Math.round(r.baseline)} | ${(r.streamed / r.baseline).toFixed(2)}x |`);

if (values.full) {
  const t = performance.now();
  const trained = await trainNetwork(ratings, factors, split, resolveKerasParams({ epochs: 1, backend: values.backend }));
  trained.model.dispose();
  const rssGb = process.resourceUsage().maxRSS / 1024 / 1024;
  console.log("");
  console.log(`full: trainNetwork, 1 epoch over ${trained.metrics.training_nrows - trained.metrics.validation_nrows} rows + validation + evaluation of ${ROWS} ratings: ${((performance.now() - t) / 1000).toFixed(0)} s, test RMSE ${trained.metrics.test_rmse.toFixed(4)}`);
  console.log(`peak RSS of the whole run: ${rssGb.toFixed(2)} GB`);
}
