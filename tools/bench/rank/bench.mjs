#!/usr/bin/env node
/**
 * The rank benchmark: `node tools/bench/run.mjs rank` (pnpm build first). Three parts, chosen by
 * MS_RANK_PARTS (comma list, default all); each keeps its figures in tools/bench/work/rank/scores.json
 * and the whole results file (tools/bench/results/<date>-rank.md) is rendered from it, so parts run
 * one after another add up.
 *
 * - inverse: seconds of the EASE inverse (@ms/rank's invertSpd) at m = 2000, 4000, 8000
 *   (MS_RANK_SIZES), and of a plain triple-loop Cholesky inverse (column-strided loops on the same
 *   row-major Float64Array) in the same run, up to MS_RANK_BASELINE_MAX (default 2000: the baseline
 *   at 4000 takes minutes here); the ratio is baseline / blocked.
 * - quality: 5-fold (a rating's fold is floor(splitHash(user, movie, 42) * 5) + 1, exactly
 *   `ms run -P split=kfold`) on ml-latest-small and the synthetic kinds (lowrank, drift, powerlaw, taste;
 *   100k ratings, seed 42): nDCG@10 (and P@10, coverage) of EASE per λ (MS_RANK_LAMBDAS), of
 *   EASE dense against pruned (200 and 500 entries per row; ml-latest-small), per item cap (MS_RANK_CAPS, ml-latest-small),
 *   and of popularity; mean ± sample std over the folds.
 * - serve: MS_RANK_SERVE_ROWS (default 20,000,000) synthetic ratings through etl, the default fit
 *   (seconds per phase) and every user's top 10 with recommendAll (users/s), against one
 *   `recommend` call per user over the first 5,000 users.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import { etl, readRatingsColumns, resolveEtlParams, writeSyntheticRatings } from "@ms/etl";
import { mulberry32, splitMaskOf } from "@ms/contracts";
import {
  easeFromGram,
  evaluateRanker,
  fitRanker,
  gramMatrix,
  invertSpd,
  modelItemsOf,
  penalisePopularity,
  AUTO_FALLBACK,
  Ranker,
  RANK_DEFAULTS,
  recommendAllParallel,
} from "@ms/rank";
import { BENCH_DATASETS, gitCommit, machine, ML_SMALL, path, table, WORK, writeResult } from "../lib.mjs";

const env = process.env;
const list = (text, parse = Number) => text.split(",").map((x) => parse(x.trim()));
const PARTS = list(env.MS_RANK_PARTS ?? "inverse,quality,serve", String);
const SIZES = list(env.MS_RANK_SIZES ?? "2000,4000,8000");
const BASELINE_MAX = Number(env.MS_RANK_BASELINE_MAX ?? 2000);
const LAMBDAS = list(env.MS_RANK_LAMBDAS ?? "100,200,400,800");
const PENALTIES = list(env.MS_RANK_PENALTIES ?? "0.1,0.2,0.3,0.4");
const CAPS = list(env.MS_RANK_CAPS ?? "1000,2000");
const DATASETS = list(env.MS_RANK_DATASETS ?? BENCH_DATASETS.join(","), String);
const SERVE_ROWS = Number(env.MS_RANK_SERVE_ROWS ?? 20_000_000);
const FOLDS = 5;
const SEED = 42;
// The λ these tables are built around: the former fixed default (rank_lambda is auto now).
const REFERENCE_LAMBDA = AUTO_FALLBACK.lambda;
const K = 10;
const work = path.join(WORK, "rank");
mkdirSync(work, { recursive: true });
const scoresFile = path.join(work, "scores.json");
const scores = existsSync(scoresFile) ? JSON.parse(readFileSync(scoresFile, "utf8")) : {};
/** Saves this run's parts over what is on disk, so parts run side by side keep each other's figures. */
const save = () => {
  const disk = existsSync(scoresFile) ? JSON.parse(readFileSync(scoresFile, "utf8")) : {};
  for (const part of PARTS) if (scores[part] !== undefined) disk[part] = scores[part];
  Object.assign(scores, disk);
  writeFileSync(`${scoresFile}.${process.pid}.tmp`, JSON.stringify(disk, null, 1));
  renameSync(`${scoresFile}.${process.pid}.tmp`, scoresFile);
};
const log = (text) => process.stderr.write(`rank: ${text}\n`);
const seconds = (t0) => (performance.now() - t0) / 1000;
/** CPU seconds this process spent since `from` (a process.cpuUsage() reading): under load, near what the work takes on an idle core. */
const cpuSeconds = (from) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};
const uptime = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(", ");

/** A symmetric, diagonally dominant (so positive definite) m x m matrix, full storage. */
function spd(m) {
  const a = new Float64Array(m * m);
  const random = mulberry32(m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < i; j++) {
      a[i * m + j] = random();
      a[j * m + i] = a[i * m + j];
    }
    a[i * m + i] = m;
  }
  return a;
}

/** The plain baseline: textbook Cholesky, then L^-1 and P = L^-T L^-1 with column-strided inner loops. */
function baselineInverse(a, m) {
  const l = new Float64Array(m * m);
  for (let j = 0; j < m; j++)
    for (let i = j; i < m; i++) {
      let s = a[i * m + j];
      for (let k = 0; k < j; k++) s -= l[i * m + k] * l[j * m + k];
      l[i * m + j] = i === j ? Math.sqrt(s) : s / l[j * m + j];
    }
  const w = new Float64Array(m * m);
  for (let j = 0; j < m; j++)
    for (let i = j; i < m; i++) {
      let s = i === j ? 1 : 0;
      for (let k = j; k < i; k++) s -= l[i * m + k] * w[k * m + j];
      w[i * m + j] = s / l[i * m + i];
    }
  const p = new Float64Array(m * m);
  for (let i = 0; i < m; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < m; k++) s += w[k * m + i] * w[k * m + j];
      p[i * m + j] = p[j * m + i] = s;
    }
  return p;
}

function runInverse() {
  scores.inverse ??= {};
  for (const m of SIZES) {
    const a = spd(m);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    invertSpd(a, m);
    const blocked = seconds(t0);
    const blockedCpu = cpuSeconds(c0);
    let baseline = null;
    let baselineCpu = null;
    if (m <= BASELINE_MAX) {
      const t1 = performance.now();
      const c1 = process.cpuUsage();
      baselineInverse(spd(m), m);
      baseline = seconds(t1);
      baselineCpu = cpuSeconds(c1);
    }
    scores.inverse[m] = { blocked, blockedCpu, baseline, baselineCpu, load: uptime(), commit: gitCommit() };
    log(`inverse m=${m}: ${blocked.toFixed(2)} s${baseline ? `, baseline ${baseline.toFixed(2)} s` : ""}`);
    save();
  }
}

/** The etl artifact of a dataset (ml-latest-small or a synthetic kind), made once under WORK/rank. */
async function ratingsOf(name, rows = 100_000) {
  const dir = path.join(work, name === "ml-latest-small" ? name : `${name}-${rows}`);
  if (!existsSync(path.join(dir, "manifest.json"))) {
    let csv = path.join(ML_SMALL, "ratings.csv");
    if (name !== "ml-latest-small") {
      csv = path.join(work, `${name}-${rows}.csv`);
      if (!existsSync(csv)) {
        writeSyntheticRatings(`${csv}.tmp`, { rows, seed: SEED, kind: name });
        renameSync(`${csv}.tmp`, csv);
      }
    }
    await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), dir);
  }
  return readRatingsColumns(dir);
}

/** The same fit with each popularity penalty β of MS_RANK_PENALTIES (B's columns scaled, no refit). */
function keepPenalised(name, fold, config, rows, modelItems, trainCounts, keep, evaluate) {
  for (const beta of PENALTIES) {
    const label = `${config} β=${beta}`;
    if (scores.quality[`${name}|${label}|${fold}`] && !env.MS_RANK_RERUN) continue;
    const copy = { offsets: rows.offsets, cols: rows.cols, values: Float32Array.from(rows.values) };
    penalisePopularity(copy, modelItems, trainCounts, beta);
    keep(label, evaluate(copy));
  }
}

/** One fold: the gram matrix once per cap, then every λ (and dense at the default λ) on it. */
function runFold(name, cols, fold) {
  const mask = splitMaskOf({ kind: "kfold", seed: SEED, splitProp: 0.8, folds: FOLDS, fold }, cols);
  const evalOptions = { k: K, minRating: 0, maxUsers: 1e9, seed: SEED };
  const keep = (config, m) => {
    scores.quality[`${name}|${config}|${fold}`] = {
      ndcg: m.ndcg,
      precision: m.precision,
      coverage: m.coverage,
      users: m.users,
      load: uptime(),
    };
    save();
  };
  const base = fitRanker(cols, mask, { model: "popularity", lambda: 1, maxItems: 1, neighbors: 0 });
  keep("popularity", evaluateRanker(new Ranker(base.model), cols, mask, base.train, evalOptions));
  const { itemIds, trainCounts } = base.model;
  const caps = name === "ml-latest-small" ? [...new Set([RANK_DEFAULTS.rank_max_items, ...CAPS])] : [RANK_DEFAULTS.rank_max_items];
  for (const cap of caps) {
    const modelItems = modelItemsOf(trainCounts, itemIds, cap);
    const m = modelItems.length;
    const local = new Int32Array(itemIds.length).fill(-1);
    modelItems.forEach((p, c) => (local[p] = c));
    const ids = Int32Array.from(modelItems, (p) => itemIds[p]);
    const g = gramMatrix(base.train, local, m);
    const lambdas = cap === RANK_DEFAULTS.rank_max_items ? LAMBDAS : [REFERENCE_LAMBDA];
    for (const lambda of lambdas) {
      const pruned = name === "ml-latest-small" && lambda === REFERENCE_LAMBDA && cap === RANK_DEFAULTS.rank_max_items;
      for (const neighbors of pruned ? [...new Set([RANK_DEFAULTS.rank_neighbors, 0, 200, 500])] : [RANK_DEFAULTS.rank_neighbors]) {
        const config = `ease λ=${lambda} cap=${cap} ${neighbors === 0 ? "dense" : `neighbors=${neighbors}`}`;
        // A figure an earlier run kept is not measured again (MS_RANK_RERUN=1 measures it anew).
        const penalised = neighbors === 0 && lambda === REFERENCE_LAMBDA;
        const missing = (label) => !scores.quality[`${name}|${label}|${fold}`];
        const wanted = [config, ...(penalised ? PENALTIES.map((beta) => `${config} β=${beta}`) : [])];
        if (!wanted.some(missing) && !env.MS_RANK_RERUN) continue;
        const t0 = performance.now();
        const fit = easeFromGram(Float64Array.from(g), m, lambda, neighbors, ids);
        const fitSeconds = seconds(t0);
        const ranker = new Ranker({ model: "ease", itemIds, trainCounts, modelItems, rows: fit.rows });
        keep(config, { ...evaluateRanker(ranker, cols, mask, base.train, evalOptions), seconds: fitSeconds });
        scores.quality[`${name}|${config}|${fold}`].seconds = fitSeconds;
        if (neighbors === 0 && lambda === REFERENCE_LAMBDA)
          keepPenalised(name, fold, config, fit.rows, modelItems, trainCounts, keep, (rows) =>
            evaluateRanker(new Ranker({ model: "ease", itemIds, trainCounts, modelItems, rows }), cols, mask, base.train, evalOptions),
          );
        log(
          `${name} fold ${fold}: ${config}: nDCG@10 ${scores.quality[`${name}|${config}|${fold}`].ndcg.toFixed(4)} (${fitSeconds.toFixed(1)} s)`,
        );
      }
    }
  }
}

async function runQuality() {
  scores.quality ??= {};
  const data = new Map();
  for (const name of DATASETS) data.set(name, await ratingsOf(name));
  // Fold by fold across the datasets, so a run cut short still has every dataset's first folds.
  for (let fold = 1; fold <= FOLDS; fold++) for (const [name, cols] of data) runFold(name, cols, fold);
}

async function runServe() {
  const name = "lowrank";
  const t0 = performance.now();
  const cols = await ratingsOf(name, SERVE_ROWS);
  const loadSeconds = seconds(t0);
  const mask = splitMaskOf({ kind: "hash", seed: SEED, splitProp: 0.8 }, cols);
  const t1 = performance.now();
  const cpu1 = process.cpuUsage();
  const fitted = fitRanker(cols, mask, {
    model: "ease",
    lambda: REFERENCE_LAMBDA,
    maxItems: RANK_DEFAULTS.rank_max_items,
    neighbors: RANK_DEFAULTS.rank_neighbors,
  });
  const fitSeconds = seconds(t1);
  const fitCpu = cpuSeconds(cpu1);
  const ranker = new Ranker(fitted.model);
  const t2 = performance.now();
  const cpu2 = process.cpuUsage();
  const all = ranker.recommendAll(fitted.train, K);
  const batchSeconds = seconds(t2);
  const batchCpu = cpuSeconds(cpu2);
  const t4 = performance.now();
  const both = await recommendAllParallel(fitted.model, fitted.train, K, {}, 2);
  const parallelSeconds = seconds(t4);
  if (both.items.some((x, i) => x !== all.items[i])) throw new Error("recommendAllParallel differs from recommendAll");
  const single = Math.min(5000, fitted.train.userIds.length);
  const t3 = performance.now();
  for (let u = 0; u < single; u++) {
    const hist = fitted.train.items.subarray(fitted.train.offsets[u], fitted.train.offsets[u + 1]);
    ranker.recommend(
      Int32Array.from(hist, (p) => ranker.itemIds[p]),
      K,
    );
  }
  const singleSeconds = seconds(t3);
  scores.serve = {
    rows: cols.userIds.length,
    trainRows: fitted.trainRows,
    users: all.userIds.length,
    items: fitted.model.itemIds.length,
    loadSeconds,
    fitSeconds,
    phases: fitted.seconds,
    batchSeconds,
    parallelSeconds,
    batchCpu,
    fitCpu,
    batchUsersPerSecond: all.userIds.length / batchSeconds,
    batchUsersPerCpuSecond: all.userIds.length / batchCpu,
    singleUsersPerSecond: single / singleSeconds,
    load: uptime(),
    commit: gitCommit(),
  };
  log(`serve: ${JSON.stringify(scores.serve)}`);
  save();
}

function meanStd(xs) {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

function qualityTable(name) {
  const configs = [
    ...new Set(
      Object.keys(scores.quality ?? {})
        .filter((k) => k.startsWith(`${name}|`))
        .map((k) => k.split("|")[1]),
    ),
  ];
  const rows = configs.map((config) => {
    const got = Object.entries(scores.quality)
      .filter(([k]) => k.startsWith(`${name}|${config}|`))
      .map(([, v]) => v);
    const n = meanStd(got.map((g) => g.ndcg));
    const p = meanStd(got.map((g) => g.precision));
    const c = meanStd(got.map((g) => g.coverage));
    const s = got.every((g) => g.seconds !== undefined) ? meanStd(got.map((g) => g.seconds)).mean.toFixed(1) : "";
    return [config, `${n.mean.toFixed(4)} ± ${n.std.toFixed(4)}`, p.mean.toFixed(4), c.mean.toFixed(3), String(got.length), s];
  });
  rows.sort((a, b) => Number(b[1].split(" ")[0]) - Number(a[1].split(" ")[0]));
  return table(["configuration", "nDCG@10 mean ± std", "P@10", "coverage", "folds", "fit s / fold"], rows);
}

function render() {
  const cpu = (x) => (x === undefined || x === null ? "" : ` (${x.toFixed(1)} CPU)`);
  const inv = Object.entries(scores.inverse ?? {}).map(([m, r]) => [
    Number(m),
    `${r.blocked.toFixed(1)}${cpu(r.blockedCpu)}`,
    r.baseline === null ? "not run" : `${r.baseline.toFixed(1)}${cpu(r.baselineCpu)}`,
    r.baseline === null ? "" : (r.baselineCpu && r.blockedCpu ? r.baselineCpu / r.blockedCpu : r.baseline / r.blocked).toFixed(2),
    r.load,
  ]);
  const s = scores.serve;
  const parts = [
    "# rank: the EASE inverse, ranking quality 5-fold, serving every user",
    "",
    `Command: \`node tools/bench/run.mjs rank\` (pnpm build first; MS_RANK_PARTS=inverse,quality,serve). Machine: ${machine()}. Commit ${gitCommit()}.`,
    "The machine is shared with other sessions: the load average (1, 5, 15 min) is given beside each figure.",
    "",
    "## The inverse (m x m, seconds)",
    "",
    table(["m", "blocked (invertSpd), s", "plain triple loop, s", "ratio", "load"], inv),
    "",
    `## Ranking quality, 5-fold (k = ${K}, every test item relevant, training items excluded)`,
    "",
  ];
  for (const name of DATASETS)
    parts.push(`### ${name === "ml-latest-small" ? name : `synthetic ${name}, 100,000 ratings`}`, "", qualityTable(name), "");
  if (s)
    parts.push(
      `## Serving: ${s.rows.toLocaleString("en-US")} synthetic (lowrank) ratings, ${s.users.toLocaleString("en-US")} users, ${s.items.toLocaleString("en-US")} items`,
      "",
      table(
        ["what", "value"],
        [
          ["etl + load (s)", s.loadSeconds.toFixed(1)],
          [
            "fit (s): gram / inverse / prune",
            `${s.fitSeconds.toFixed(1)}: ${s.phases.gram.toFixed(1)} / ${s.phases.inverse.toFixed(1)} / ${s.phases.prune.toFixed(1)}`,
          ],
          ["fit, CPU seconds", s.fitCpu?.toFixed(1) ?? ""],
          ["recommendAll, every user's top 10 (s)", s.batchSeconds.toFixed(1)],
          ["recommendAll, CPU seconds", s.batchCpu?.toFixed(1) ?? ""],
          ["recommendAllParallel, 2 threads (s)", s.parallelSeconds?.toFixed(1) ?? ""],
          ["recommendAll users/s (wall)", Math.round(s.batchUsersPerSecond)],
          ["recommendAll users per CPU second", s.batchUsersPerCpuSecond ? Math.round(s.batchUsersPerCpuSecond) : ""],
          ["recommend (one call per user) users/s", Math.round(s.singleUsersPerSecond)],
          ["load", s.load],
        ],
      ),
      "",
    );
  // What the figures mean and the defaults chosen from them, kept beside the bench (notes.md).
  const notes = path.join(path.dirname(new URL(import.meta.url).pathname), "notes.md");
  if (existsSync(notes)) parts.push(readFileSync(notes, "utf8"));
  return parts.join("\n");
}

if (PARTS.includes("inverse")) runInverse();
if (PARTS.includes("quality")) await runQuality();
if (PARTS.includes("serve")) await runServe();
const md = render();
process.stdout.write(`${md}\n`);
log(`wrote ${writeResult("rank", md)}`);
