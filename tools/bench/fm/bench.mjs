#!/usr/bin/env node
/**
 * The Bayesian model's feature groups and sample count, each on and off: test RMSE (mean and
 * standard deviation over 5 folds of every rating, cut by the project's split hash, seed 42) and
 * seconds per fit, on ml-latest-small and on the etl package's synthetic ratings (100k, seed 42).
 * Configurations: today's fixed 40 sweeps (burn-in 8), a fixed count (MS_FM_SAMPLES, default 200,
 * burn-in 20), the data-chosen count (a fit on 90% of the training part stops by the other 10%'s
 * error, capped at MS_FM_CAP, then the whole training part is fitted with the count it used), and
 * each group (implicit user side, implicit movie side, time, ordinal output) alone, and the first
 * three together, at the fixed count.
 * With MS_FM_MODE=oof it measures instead how the out-of-fold scheme's full fit should take its
 * count from the folds' data-chosen ones (max or mean): the hash split (seed 42, 80% training),
 * 3 folds, the test rows' bayes_prediction RMSE.
 * Prints the table and writes tools/bench/results/<date>-fm.md. `MS_FM_DATASETS=small,synthetic`,
 * `MS_FM_CONFIGS=name,...` pick a subset, `MS_FM_RESULT` names the results file; `pnpm build` first.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { splitHash } from "@ms/contracts";
import { gibbsFit, outOfFoldFeatures } from "@ms/fm";
import { fmt, gitCommit, machine, ML_SMALL, path, syntheticRatingsCsv, table, writeResult } from "../lib.mjs";

const FOLDS = 5;
const SEED = 42;
const RANK = Number(process.env.MS_FM_RANK ?? 10);
const SAMPLES = Number(process.env.MS_FM_SAMPLES ?? 200);
const CAP = Number(process.env.MS_FM_CAP ?? 400);
const BURN = 20;
const log = (m) => process.stderr.write(`fm: ${m}\n`);

/** userId,movieId,rating,timestamp CSV (with a header) onto dense indices. */
function readCsv(file) {
  const lines = readFileSync(file, "utf8").split("\n");
  const u = [];
  const m = [];
  const r = [];
  const t = [];
  for (let k = 1; k < lines.length; k++) {
    if (!lines[k]) continue;
    const [a, b, c, d] = lines[k].split(",");
    u.push(Number(a));
    m.push(Number(b));
    r.push(Number(c));
    t.push(Number(d));
  }
  const dense = (ids) => {
    const map = new Map();
    const idx = Int32Array.from(ids, (id) => {
      if (!map.has(id)) map.set(id, map.size);
      return map.get(id);
    });
    return { idx, n: map.size };
  };
  const us = dense(u);
  const ms = dense(m);
  return {
    rows: r.length,
    userIds: Int32Array.from(u),
    movieIds: Int32Array.from(m),
    data: { userIdx: us.idx, itemIdx: ms.idx, ratings: Float32Array.from(r), timestamps: Float64Array.from(t), nUsers: us.n, nItems: ms.n },
  };
}

const CONFIGS = [
  { name: "fixed 40 (today)", samples: 40, burnIn: 8, features: {} },
  { name: `fixed ${SAMPLES}`, samples: SAMPLES, burnIn: BURN, features: {} },
  { name: `stop (cap ${CAP})`, stop: true, samples: CAP, burnIn: BURN, features: {} },
  { name: "+implicit user", samples: SAMPLES, burnIn: BURN, features: { implicitUser: true } },
  { name: "+implicit movie", samples: SAMPLES, burnIn: BURN, features: { implicitMovie: true } },
  { name: "+time", samples: SAMPLES, burnIn: BURN, features: { time: true } },
  { name: "+ordinal", samples: SAMPLES, burnIn: BURN, features: { ordinal: true } },
  { name: "+implicit both", samples: SAMPLES, burnIn: BURN, features: { implicitUser: true, implicitMovie: true } },
  { name: "+all three", samples: SAMPLES, burnIn: BURN, features: { implicitUser: true, implicitMovie: true, time: true } },
  {
    name: `all, stop (cap ${CAP})`,
    stop: true,
    samples: CAP,
    burnIn: BURN,
    features: { implicitUser: true, implicitMovie: true, time: true },
  },
];

/** Splits `rows` by the hash of (user, movie) with `seed`: [part below `cut`, the rest]. */
function cutRows(set, rows, seed, cut) {
  const a = [];
  const b = [];
  for (const i of rows) (splitHash(set.userIds[i], set.movieIds[i], seed) < cut ? a : b).push(i);
  return [Int32Array.from(a), Int32Array.from(b)];
}

async function runFold(set, config, train, test) {
  const { data } = set;
  const base = { rank: RANK, burnIn: config.burnIn, seed: SEED, features: config.features };
  let samples = config.samples;
  if (config.stop) {
    const [inner, held] = cutRows(set, train, SEED + 1, 0.9);
    const validation = {
      userIdx: Int32Array.from(held, (i) => data.userIdx[i]),
      itemIdx: Int32Array.from(held, (i) => data.itemIdx[i]),
      ratings: Float32Array.from(held, (i) => data.ratings[i]),
      timestamps: Float64Array.from(held, (i) => data.timestamps[i]),
    };
    const probe = await gibbsFit(data, inner, new Int32Array(0), { ...base, samples: CAP, validation });
    samples = probe.samplesUsed;
  }
  const fit = await gibbsFit(data, train, test, { ...base, samples });
  let se = 0;
  for (let k = 0; k < test.length; k++) se += (fit.predictions[k] - data.ratings[test[k]]) ** 2;
  return { rmse: Math.sqrt(se / test.length), samples };
}

const meanStd = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return [mean, sd];
};

/** The out-of-fold scheme's full fit with the folds' max or mean count: test RMSE of the full fit's predictions. */
async function oofRows(name, set) {
  const out = [];
  const ratings = {
    rows: set.rows,
    userIds: set.userIds,
    movieIds: set.movieIds,
    ratings: set.data.ratings,
    timestamps: set.data.timestamps,
  };
  for (const fullSamples of ["max", "mean"]) {
    const started = performance.now();
    const features = { implicitUser: true, implicitMovie: true, time: true };
    const o = { folds: 3, rank: RANK, samples: CAP, maxSamples: CAP, burnIn: BURN, seed: SEED, features, fullSamples };
    const f = await outOfFoldFeatures(ratings, { seed: SEED, splitProp: 0.8 }, o);
    let se = 0;
    let n = 0;
    for (let i = 0; i < set.rows; i++) {
      if (f.trainMask[i] === 1) continue;
      se += (f.values[i * f.width] - set.data.ratings[i]) ** 2;
      n++;
    }
    const seconds = (performance.now() - started) / 1000;
    log(`${name} oof full fit ${fullSamples}: ${fmt(Math.sqrt(se / n), 4)}, sweeps ${f.samplesUsed.join("/")}, ${fmt(seconds, 1)} s`);
    out.push([name, `oof, full fit = ${fullSamples}`, fmt(Math.sqrt(se / n), 4), "-", f.samplesUsed.join("/"), fmt(seconds, 1)]);
  }
  return out;
}

const wanted = (process.env.MS_FM_DATASETS ?? "small,synthetic").split(",");
const pickConfigs = process.env.MS_FM_CONFIGS?.split(",");
const datasets = [];
if (wanted.includes("small")) datasets.push(["ml-latest-small", path.join(ML_SMALL, "ratings.csv")]);
if (wanted.includes("synthetic")) datasets.push(["synthetic 100k", await syntheticRatingsCsv(100_000)]);
const loadBefore = os.loadavg();
const rows = [];
for (const [name, file] of datasets) {
  const set = readCsv(file);
  if (process.env.MS_FM_MODE === "oof") {
    rows.push(...(await oofRows(name, set)));
    continue;
  }
  const all = Int32Array.from({ length: set.rows }, (_, i) => i);
  const foldOf = Int32Array.from(all, (i) => Math.min(FOLDS - 1, Math.floor(splitHash(set.userIds[i], set.movieIds[i], SEED) * FOLDS)));
  for (const config of CONFIGS) {
    if (pickConfigs && !pickConfigs.includes(config.name)) continue;
    const rmse = [];
    const used = [];
    const started = performance.now();
    for (let f = 0; f < FOLDS; f++) {
      const train = all.filter((i) => foldOf[i] !== f);
      const test = all.filter((i) => foldOf[i] === f);
      const r = await runFold(set, config, train, test);
      rmse.push(r.rmse);
      used.push(r.samples);
    }
    const seconds = (performance.now() - started) / 1000 / FOLDS;
    const [m, s] = meanStd(rmse);
    log(`${name} ${config.name}: ${fmt(m, 4)} +- ${fmt(s, 4)}, samples ${used.join("/")}, ${fmt(seconds, 1)} s/fold`);
    rows.push([name, config.name, fmt(m, 4), fmt(s, 4), used.join("/"), fmt(seconds, 1)]);
  }
}
const loadAfter = os.loadavg();
const body = table(["data", "model", "test RMSE mean", "std (5 folds)", "sweeps used per fold", "s per fold"], rows);
process.stdout.write(`\n${body}\n`);
const load = (l) => l.map((x) => x.toFixed(2)).join(" ");
writeResult(
  process.env.MS_FM_RESULT ?? "fm",
  [
    "# The Bayesian model's feature groups and sample count",
    "",
    `${machine()}; commit ${gitCommit()}; load average ${load(loadBefore)} before, ${load(loadAfter)} after.`,
    `\`node tools/bench/fm/bench.mjs\` (pnpm build first): gibbsFit rank ${RANK}, 5 folds of every rating by the split hash (seed 42); the stop rows fit 90% of the training part with the other 10% as validation (cap ${CAP}, burn-in ${BURN}), then the whole training part with the count used (seconds include both fits).`,
    "",
    body,
    "",
  ].join("\n"),
);
