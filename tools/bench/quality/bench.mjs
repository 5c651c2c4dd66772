#!/usr/bin/env node
/**
 * Quality benchmark: k-fold test RMSE of ms configurations (through the real `ms run` CLI) and of
 * the recommender peers (tools/bench/quality/peers.py: Surprise BaselineOnly, SVD, SVD++; myFM rank
 * 10, 200 samples, plain and with its implicit and time relation blocks), every one fitted and
 * scored on exactly the same fold files. `node tools/bench/run.mjs quality` (pnpm build first).
 *
 * Datasets: ml-latest-small ($MS_MOVIELENS_SMALL/ratings.csv) and each synthetic kind (lowrank,
 * drift, powerlaw, taste; seed 42) at 100k ratings. Each is cut into 5 folds, a rating's fold being
 * floor(splitHash(userId, movieId, 42) * 5) + 1 (the assignment `ms run -P split=kfold` uses), and
 * fold k is written as train (the other folds) and test (fold k) CSV files under
 * tools/bench/work/quality/<dataset>/fold-<k>/. Every test row is scored, cold ones included
 * (each model's cold-start rule: the ms steps' own, Surprise's baseline, myFM's zero one-hot).
 * ms runs `ms run --ratings-csv TRAIN -P split=file --test-ratings TEST -P max_row_limit=-1 --json`,
 * a fresh cache and MLflow file store per run. When `ms run` does not know `split=file` yet, the
 * harness falls back to the hash split (`--ratings-csv ALL -P seed=42 -P split_prop=0.8`), whose
 * test part is exactly fold 5, so only fold 5 is scored for ms and the table says so.
 *
 * Scores are kept under tools/bench/work/quality/scores/ as they come (a file per dataset,
 * configuration and fold), so runs of subsets, one after the other or side by side, add up; the table and the results file
 * (tools/bench/results/<date>-quality.md) show every score kept for the folds asked for.
 *
 * Environment (to fit a time budget):
 *   MS_QUALITY_DATASETS        comma list of ml-latest-small, lowrank, drift, powerlaw, taste (default all)
 *   MS_QUALITY_FOLDS           comma list of folds 1-5 to run (default all)
 *   MS_QUALITY_MS              comma list of ms configuration names (MS_CONFIGS below), or 0 for none (default all)
 *   MS_QUALITY_PEERS           comma list of peer keys (PEERS below), or 0 for none (default all)
 *   MS_QUALITY_SYNTHETIC_ROWS  ratings per synthetic dataset (default 100000)
 *   MS_QUALITY_PEER_TIMEOUT    seconds one peer may take on one fold (default 1800); past it, that peer is
 *                              marked not scored on the dataset (Surprise's SVD++ costs sum_u n_u^2 per epoch)
 *   MS_QUALITY_SPLIT           auto (default: file when ms run knows it, else hash), file or hash
 *   MS_QUALITY_RERUN=1         score again what earlier runs scored (the new score replaces the old)
 *   MS_QUALITY_FRESH=1         forget the scores of earlier runs
 */
import { splitHash } from "@ms/contracts";
import { writeSyntheticRatings } from "@ms/etl";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { BENCH_DATASETS, envList, existsSync, fmt, gitCommit, machine, ML_SMALL, path, ROOT, table, WORK, writeResult } from "../lib.mjs";

const FOLDS = 5;
const SEED = 42;

/**
 * The ms configurations: a name for the table, the `-P` assignments, and the step whose test_rmse
 * scores it. Configurations with the same assignments share one `ms run`.
 */
const MS_CONFIGS = [
  { name: "ms ALS (als step)", params: [], step: "als" },
  { name: "ms seed network", params: ["keras_features=seed"], step: "keras" },
  { name: "ms default", params: [], step: "keras" },
  { name: "ms fm step (default)", params: [], step: "fm" },
  { name: "ms fm groups off", params: ["fm_implicit_user=false", "fm_implicit_movie=false", "fm_time=false"], step: "keras" },
  { name: "ms fm groups on", params: ["fm_implicit_user=true", "fm_implicit_movie=true", "fm_time=true"], step: "keras" },
  { name: "ms fm step groups on", params: ["fm_implicit_user=true", "fm_implicit_movie=true", "fm_time=true"], step: "fm" },
  { name: "ms fm_implicit_user=true", params: ["fm_implicit_user=true"], step: "keras" },
  { name: "ms fm_implicit_user=false", params: ["fm_implicit_user=false"], step: "keras" },
  { name: "ms fm_implicit_movie=true", params: ["fm_implicit_movie=true"], step: "keras" },
  { name: "ms fm_implicit_movie=false", params: ["fm_implicit_movie=false"], step: "keras" },
  { name: "ms fm_time=true", params: ["fm_time=true"], step: "keras" },
  { name: "ms fm_time=false", params: ["fm_time=false"], step: "keras" },
  { name: "ms fm_output=ordinal", params: ["fm_output=ordinal"], step: "keras" },
  { name: "ms fm step fm_implicit_user=true", params: ["fm_implicit_user=true"], step: "fm" },
  { name: "ms fm step fm_implicit_movie=true", params: ["fm_implicit_movie=true"], step: "fm" },
  { name: "ms fm step fm_time=true", params: ["fm_time=true"], step: "fm" },
];

/** The peers: the key peers.py knows them by, and a name for the table. */
const PEERS = [
  { key: "surprise-baseline", name: "Surprise BaselineOnly" },
  { key: "surprise-svd", name: "Surprise SVD" },
  { key: "surprise-svdpp", name: "Surprise SVD++" },
  { key: "myfm", name: "myFM rank 10, 200 samples" },
  { key: "myfm-implicit", name: "myFM + implicit (user and movie)" },
  { key: "myfm-implicit-time", name: "myFM + implicit + time (day one-hot)" },
];

const DATASETS = BENCH_DATASETS;
const env = process.env;
const list = envList;
const wantedDatasets = list(env.MS_QUALITY_DATASETS, DATASETS);
const wantedFolds = list(env.MS_QUALITY_FOLDS, ["1", "2", "3", "4", "5"]).map(Number);
const wantedMs = list(
  env.MS_QUALITY_MS,
  MS_CONFIGS.map((c) => c.name),
);
const wantedPeers = list(
  env.MS_QUALITY_PEERS,
  PEERS.map((p) => p.key),
);
const syntheticRows = Number(env.MS_QUALITY_SYNTHETIC_ROWS ?? 100_000);
const peerTimeout = Number(env.MS_QUALITY_PEER_TIMEOUT ?? 1800);
for (const d of wantedDatasets)
  if (!DATASETS.includes(d)) throw new Error(`MS_QUALITY_DATASETS: unknown dataset ${d} (have ${DATASETS.join(", ")})`);
for (const f of wantedFolds)
  if (!(Number.isInteger(f) && f >= 1 && f <= FOLDS)) throw new Error(`MS_QUALITY_FOLDS: no fold ${f} (1-${FOLDS})`);
for (const c of wantedMs) if (!MS_CONFIGS.some((m) => m.name === c)) throw new Error(`MS_QUALITY_MS: unknown configuration ${c}`);
for (const p of wantedPeers) if (!PEERS.some((q) => q.key === p)) throw new Error(`MS_QUALITY_PEERS: unknown peer ${p}`);

const work = path.join(WORK, "quality");
mkdirSync(work, { recursive: true });
// One file per score, so bench processes running side by side never overwrite each other's.
const scoresDir = path.join(work, "scores");
if (env.MS_QUALITY_FRESH === "1") rmSync(scoresDir, { recursive: true, force: true });
mkdirSync(scoresDir, { recursive: true });
const readScores = () => {
  const all = {};
  for (const f of readdirSync(scoresDir).filter((n) => n.endsWith(".json"))) {
    const { key, ...score } = JSON.parse(readFileSync(path.join(scoresDir, f), "utf8"));
    all[key] = score;
  }
  return all;
};
const scores = readScores();
const keep = (dataset, config, fold, score) => {
  const key = `${dataset}|${config}|${fold}`;
  scores[key] = { ...score, commit: gitCommit(), at: new Date().toISOString() };
  const file = path.join(scoresDir, `${key.replace(/[^a-z0-9=.+-]+/gi, "_")}.json`);
  writeFileSync(`${file}.${process.pid}`, `${JSON.stringify({ key, ...scores[key] }, null, 1)}\n`);
  renameSync(`${file}.${process.pid}`, file);
};
const rerun = env.MS_QUALITY_RERUN === "1";

const msBin = path.join(ROOT, "packages/driver/dist/bin.js");
const splitMode = (() => {
  const asked = env.MS_QUALITY_SPLIT ?? "auto";
  if (asked !== "auto") return asked;
  const help = spawnSync(process.execPath, [msBin, "run", "--help"], { encoding: "utf8" }).stdout ?? "";
  return help.includes("--test-ratings") ? "file" : "hash";
})();

function datasetCsv(name) {
  if (name === "ml-latest-small") return path.join(ML_SMALL, "ratings.csv");
  const file = path.join(work, "data", `synthetic-${name}-${syntheticRows}-s${SEED}.csv`);
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeSyntheticRatings(`${file}.tmp`, { rows: syntheticRows, seed: SEED, kind: name });
    renameSync(`${file}.tmp`, file);
  }
  return file;
}

/** Writes fold-k/train.csv and fold-k/test.csv for every fold (once); returns the directory. */
function writeFolds(name, csv) {
  const dir = path.join(work, name === "ml-latest-small" ? name : `${name}-${syntheticRows}`);
  const done = path.join(dir, "folds.done");
  if (existsSync(done)) return dir;
  const [header, ...lines] = readFileSync(csv, "utf8").trimEnd().split(/\r?\n/);
  const parts = Array.from({ length: FOLDS }, () => []);
  for (const line of lines) {
    const [u, m] = line.split(",", 2);
    parts[Math.floor(splitHash(Number(u), Number(m), SEED) * FOLDS)].push(line);
  }
  for (let k = 1; k <= FOLDS; k++) {
    const foldDir = path.join(dir, `fold-${k}`);
    mkdirSync(foldDir, { recursive: true });
    const train = parts.filter((_, i) => i !== k - 1).flat();
    writeFileSync(path.join(foldDir, "train.csv"), `${header}\n${train.join("\n")}\n`);
    writeFileSync(path.join(foldDir, "test.csv"), `${header}\n${parts[k - 1].join("\n")}\n`);
  }
  writeFileSync(done, `${lines.length} ratings, folds of ${parts.map((p) => p.length).join(", ")}\n`);
  return dir;
}

let venv;
function runPeers(dataset, foldDir, fold) {
  const keys = wantedPeers.filter((k) => rerun || !scores[`${dataset}|${PEERS.find((p) => p.key === k).name}|${fold}`]);
  if (!keys.length) return;
  venv ??= execFileSync("bash", [path.join(ROOT, "tools/python/ensure-venv.sh"), "peers"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
  for (const key of keys) {
    const name = PEERS.find((p) => p.key === key).name;
    // A peer that ran out of time on one fold of a dataset would on the others too.
    const timedOut = Object.entries(scores).find(([k, s]) => k.startsWith(`${dataset}|${name}|`) && s.timedOut);
    if (timedOut) {
      keep(dataset, name, fold, timedOut[1]);
      continue;
    }
    process.stderr.write(`quality: ${dataset} fold ${fold}: ${key}\n`);
    const args = [
      path.join(ROOT, "tools/bench/quality/peers.py"),
      path.join(foldDir, "train.csv"),
      path.join(foldDir, "test.csv"),
      "--only",
      key,
    ];
    const r = spawnSync(path.join(venv, "bin/python"), args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 1 << 24,
      timeout: peerTimeout * 1000,
    });
    if (r.error?.code === "ETIMEDOUT") {
      keep(dataset, name, fold, { error: `not scored: over ${peerTimeout} s on fold ${fold}`, timedOut: true });
      continue;
    }
    if (r.status !== 0) {
      keep(dataset, name, fold, { error: `peers.py exited ${r.status ?? r.signal}` });
      continue;
    }
    const out = JSON.parse(r.stdout);
    keep(dataset, name, fold, { rmse: out[key].test_rmse, seconds: out[key].seconds, testRows: out.test_rows, coldRows: out.cold_rows });
  }
}

/** One `ms run` (fresh cache and tracking store); resolves to its --json report, or an error line. */
/** The fm step's first-fold trials as `group z` (kept marked *), read from its manifest before the cache goes. */
function fmTrials(report) {
  const dir = report.steps.find((s) => s.step === "fm")?.outputs?.features?.dir;
  if (!dir || !existsSync(path.join(dir, "manifest.json"))) return undefined;
  const trials = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")).details?.trials ?? [];
  // z of the paired difference: (MSE without - MSE with) / its standard error.
  const short = { implicitUser: "iU", implicitMovie: "iM", time: "t" };
  return trials
    .map((t) => `${short[t.group] ?? t.group} ${((t.rmseWithout ** 2 - t.rmseWith ** 2) / t.se).toFixed(1)}${t.kept ? "*" : ""}`)
    .join(" ");
}

function msRun(args) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ms-quality-"));
  try {
    const r = spawnSync(
      process.execPath,
      [msBin, "run", ...args, "--cache-dir", path.join(tmp, "cache"), "--tracking-uri", path.join(tmp, "mlruns"), "--no-report", "--json"],
      { encoding: "utf8", maxBuffer: 1 << 26, env: { ...env, LOG_LEVEL: "warn" } },
    );
    if (r.status !== 0) return { error: `exit ${r.status}: ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" / ").slice(0, 300)}` };
    const report = JSON.parse(r.stdout);
    return { report, trials: fmTrials(report) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function runMs(dataset, csv, foldDir, fold) {
  if (splitMode === "hash" && fold !== FOLDS) return;
  const done = (c) => {
    const s = scores[`${dataset}|${c.name}|${fold}`];
    return !rerun && s?.split === splitMode && typeof s.rmse === "number";
  };
  const configs = MS_CONFIGS.filter((c) => wantedMs.includes(c.name) && !done(c));
  const foldRows = readFileSync(path.join(foldDir, "test.csv"), "utf8").trimEnd().split("\n").length - 1;
  const groups = new Map();
  for (const c of configs) groups.set(c.params.join(" "), [...(groups.get(c.params.join(" ")) ?? []), c]);
  for (const group of groups.values()) {
    const data =
      splitMode === "file"
        ? ["--ratings-csv", path.join(foldDir, "train.csv"), "-P", "split=file", "--test-ratings", path.join(foldDir, "test.csv")]
        : ["--ratings-csv", csv, "-P", `seed=${SEED}`, "-P", `split_prop=${(FOLDS - 1) / FOLDS}`];
    const params = [...group[0].params, "max_row_limit=-1"].flatMap((p) => ["-P", p]);
    process.stderr.write(`quality: ${dataset} fold ${fold}: ms run ${group[0].params.join(" ") || "(defaults)"} [split ${splitMode}]\n`);
    const { report, trials, error } = msRun([...data, ...params]);
    for (const c of group) {
      if (error) {
        const unknown = /unknown parameter/.test(error)
          ? `not in ms run yet (${error.match(/parameter (\w+): unknown/)?.[1]} unknown)`
          : error;
        keep(dataset, c.name, fold, { error: unknown, split: splitMode });
        continue;
      }
      const upTo = report.steps.findIndex((s) => s.step === c.step);
      const step = report.steps[upTo];
      if (!step) {
        keep(dataset, c.name, fold, { error: `no ${c.step} step in the report`, split: splitMode });
        continue;
      }
      // The als step counts cold rows in test_nrows but scores (with the default drop) only the others.
      const scored = step.metrics.test_nrows - (c.step === "als" ? (step.metrics.test_cold_start_nrows ?? 0) : 0);
      // The fm groups the run used (auto ones as its first fold chose them), for the table's note.
      const fmMetrics = report.steps.find((s) => s.step === "fm")?.metrics ?? {};
      const groups = ["implicit_user", "implicit_movie", "time"].filter((g) => fmMetrics[`group_${g}`] === 1);
      keep(dataset, c.name, fold, {
        rmse: step.metrics.test_rmse,
        ...(c.step === "fm" || c.step === "keras" ? { groups, ...(trials ? { trials } : {}) } : {}),
        seconds: report.steps.slice(0, upTo + 1).reduce((s, x) => s + x.seconds, 0),
        testRows: scored,
        unscoredRows: foldRows - scored,
        split: splitMode,
      });
    }
  }
}

function summaryRows(dataset) {
  const rows = [];
  const names = [...MS_CONFIGS.map((c) => c.name), ...PEERS.map((p) => p.name)];
  for (const name of names) {
    const isMs = MS_CONFIGS.some((c) => c.name === name);
    const got = wantedFolds.map((f) => scores[`${dataset}|${name}|${f}`]).filter((s) => s && (!isMs || s.split === splitMode));
    if (!got.length) continue;
    const ok = got.filter((s) => typeof s.rmse === "number");
    if (!ok.length) {
      rows.push([name, "-", "-", "-", "-", "-", got[0].error]);
      continue;
    }
    const xs = ok.map((s) => s.rmse);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : Number.NaN;
    const seconds = ok.reduce((a, s) => a + s.seconds, 0) / ok.length;
    const perFold = (field) => Math.round(ok.reduce((a, s) => a + (s[field] ?? 0), 0) / ok.length);
    const note = [
      ok[0].split === "hash" ? "hash split (= fold 5)" : "",
      perFold("unscoredRows") ? `${perFold("unscoredRows")} cold rows / fold not scored` : "",
      ok[0].coldRows !== undefined ? `${perFold("coldRows")} cold rows / fold scored` : "",
      got.length > ok.length ? `${got.length - ok.length} fold(s) failed` : "",
      ok.some((s) => s.groups) ? `fm groups by fold: ${ok.map((s) => (s.groups?.length ? s.groups.join("+") : "none")).join(", ")}` : "",
      ok.some((s) => s.trials) ? `first-fold trial z (* kept) by fold: ${ok.map((s) => s.trials ?? "-").join("; ")}` : "",
    ];
    rows.push([
      name,
      fmt(mean, 4),
      Number.isNaN(sd) ? "-" : fmt(sd, 4),
      String(ok.length),
      fmt(seconds, 1),
      perFold("testRows"),
      note.filter(Boolean).join("; "),
    ]);
  }
  return rows;
}

const started = performance.now();
const loadBefore = os.loadavg();
const inputs = wantedDatasets.map((dataset) => {
  const csv = datasetCsv(dataset);
  return { dataset, csv, dir: writeFolds(dataset, csv) };
});
// Fold by fold across the datasets, so a run cut short still has every dataset's first folds.
for (const fold of wantedFolds) {
  for (const { dataset, csv, dir } of inputs) {
    const foldDir = path.join(dir, `fold-${fold}`);
    runPeers(dataset, foldDir, fold);
    if (wantedMs.length) runMs(dataset, csv, foldDir, fold);
  }
}
const loadAfter = os.loadavg();
const minutes = (performance.now() - started) / 60_000;

Object.assign(scores, readScores());
const header = ["configuration", "test RMSE mean", "std", "folds", "seconds / fold", "rows scored / fold", "note"];
const sections = [];
for (const dataset of DATASETS) {
  const rows = summaryRows(dataset);
  if (!rows.length) continue;
  const title = dataset === "ml-latest-small" ? dataset : `synthetic ${dataset}, ${syntheticRows.toLocaleString("en-US")} ratings`;
  const body = table(header, rows);
  sections.push(`### ${title}\n\n${body}\n`);
  process.stdout.write(`\n${title}\n${body}\n`);
}
const setting = Object.entries(env)
  .filter(([k]) => k.startsWith("MS_QUALITY_"))
  .map(([k, v]) => `${k}=${v}`)
  .join(" ");
const md = [
  "# Quality: ms configurations and the peers, k-fold on the same files",
  "",
  `${machine()}; commit ${gitCommit()}; load average ${loadBefore.map((l) => l.toFixed(1)).join("/")} before, ` +
    `${loadAfter.map((l) => l.toFixed(1)).join("/")} after; this run took ${minutes.toFixed(1)} min.`,
  "",
  `Command: \`${setting ? `${setting} ` : ""}node tools/bench/run.mjs quality\` (pnpm build first). Folds: ${FOLDS}, fold of a rating ` +
    `floor(splitHash(userId, movieId, ${SEED}) * ${FOLDS}) + 1; the table shows folds ${wantedFolds.join(", ")}. ` +
    `ms split: ${splitMode === "file" ? "`-P split=file --test-ratings` on the fold files" : "hash split (`-P seed=42 -P split_prop=0.8`), whose test part is fold 5: ms is scored on fold 5 only"}. ` +
    "The peers score every test row, cold rows included; ms by its steps' own rule (the note counts the cold rows a step left unscored), " +
    "Surprise by the global mean plus the known baseline, myFM by an all-zero one-hot for an unseen id. " +
    "std: sample standard deviation over the folds. seconds: peers, fit + score; ms, the sum of the steps' seconds up to the scored step, cold cache. " +
    "Peers: scikit-surprise 1.1.5 and myfm 0.4.0 from PyPI (tools/python/ensure-venv.sh peers). " +
    "Scores accumulate in tools/bench/work/quality/scores/ across runs (each with its commit).",
  "",
  ...sections,
].join("\n");
const file = writeResult("quality", md);
process.stderr.write(`quality: wrote ${file}\n`);
