#!/usr/bin/env node
/**
 * Batch serving (after `pnpm build`): `node tools/bench/recommend/bench.mjs` or `pnpm bench
 * recommend`. Times `ms recommend --users all --top 10 --format csv > /dev/null` over every user
 * of 20M synthetic ratings (target: under 60 s), the same as jsonl (with the ranker's reasons),
 * with popularity and with the ALS model, and 712,047 pairs through `ms predict --pairs` (csv with
 * ALS and with the run's keras network; the table, which once overflowed the stack). Each command
 * is a whole `ms` process (start, run lookup, reading and indexing the ratings, the model, every
 * row written). The baseline, measured in the same run: the same command for one user, so
 * "per user" figures are (all - one) / users, free of the fixed cost.
 *
 * Data: one `ms run` on the synthetic dataset in its own cache and tracking store under
 * tools/bench/work/recommend, kept between runs (the second run is a cache hit). `ms run` cannot
 * skip steps, so the ones this bench does not read are made cheap: fm_model=none, the seed keras
 * network for one epoch, ALS for two iterations (its model is one of those timed).
 * Environment: MS_BENCH_RECOMMEND_ROWS (default 20,000,000), MS_BENCH_RECOMMEND_PAIRS (712,047),
 * MS_BENCH_RECOMMEND_RUN_DOC (the `ms run --json` output of a run made earlier with these
 * parameters in that cache: used instead of running again, e.g. after a rebuild changed the keys),
 * MS_BENCH_RECOMMEND_QUICK=1 (leaves out jsonl and ALS over every user).
 */
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, WORK, fmt, gitCommit, machine, table, writeResult } from "../lib.mjs";

const ROWS = Number(process.env.MS_BENCH_RECOMMEND_ROWS ?? 20_000_000);
const PAIRS = Number(process.env.MS_BENCH_RECOMMEND_PAIRS ?? 712_047);
/** MS_BENCH_RECOMMEND_QUICK=1 leaves out the slowest rows (jsonl with reasons, ALS over every user). */
const QUICK = process.env.MS_BENCH_RECOMMEND_QUICK === "1";
const BASE = path.join(WORK, "recommend");
mkdirSync(BASE, { recursive: true });
const MS = path.join(ROOT, "packages/driver/dist/bin.js");
const env = { ...process.env, MS_CACHE_DIR: path.join(BASE, "cache"), MLFLOW_TRACKING_URI: path.join(BASE, "mlruns"), LOG_LEVEL: "info" };
delete env.MS_DATASETS_DIR;
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
const startLoad = load();
const started = Date.now();

const P = { synthetic_rows: ROWS, max_row_limit: -1, als_max_iter: 2, fm_model: "none", keras_features: "seed", keras_epochs: 1 };
process.stderr.write(`ms run on ${ROWS.toLocaleString("en-US")} synthetic ratings (cached after the first time)\n`);
const runArgs = ["run", "--dataset", "synthetic", ...Object.entries(P).flatMap(([k, v]) => ["-P", `${k}=${v}`]), "--no-report", "--json"];
// MS_BENCH_RECOMMEND_RUN_DOC: the `ms run --json` document of a run already made with these parameters (its entries in BASE's cache), used as is.
const runDoc = process.env.MS_BENCH_RECOMMEND_RUN_DOC
  ? JSON.parse(readFileSync(process.env.MS_BENCH_RECOMMEND_RUN_DOC, "utf8"))
  : JSON.parse(
      execFileSync(process.execPath, [MS, ...runArgs], { env, stdio: ["ignore", "pipe", "ignore"], maxBuffer: 1 << 26 }).toString(),
    );
const rankStep = runDoc.steps.find((s) => s.step === "rank");
if (!rankStep) throw new Error("the run has no rank step: build the workspace with @ms/rank in the pipeline");

/** Runs `ms ...args` with stdout to /dev/null under /usr/bin/time: wall seconds, peak RSS, its stderr's JSON log lines. */
function timed(args) {
  return new Promise((resolve, reject) => {
    const stats = path.join(BASE, `.time-${process.pid}`);
    const devNull = openSync("/dev/null", "w");
    const t = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-f", "%M", "-o", stats, process.execPath, MS, ...args, "--run", runDoc.runId], {
      env,
      stdio: ["ignore", devNull, "pipe"],
    });
    closeSync(devNull);
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => {
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      if (code !== 0) return reject(new Error(`ms ${args.join(" ")} exited ${code}\n${stderr.slice(-2000)}`));
      const logs = stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l));
      resolve({ seconds, rssMiB: Number(readFileSync(stats, "utf8").trim().split("\n").pop()) / 1024, logs });
    });
  });
}

/** The batch's own summary line ("answered N of N users" / "predicted N pairs"). */
const summaryOf = (logs) => logs.find((l) => /^answered |^predicted /.test(l.msg ?? "")) ?? {};

const rows = [];
/** Times one command; `count`: the users or pairs it must answer (default: what its log says, checked against later runs). */
async function measure(label, args, count, unit) {
  if (QUICK && /jsonl|^als/.test(label)) return count;
  process.stderr.write(`${label}...\n`);
  const r = await timed(args);
  const s = summaryOf(r.logs);
  const done = unit === "users" ? s.users - s.failed : s.pairs;
  if (count !== undefined && done !== count) throw new Error(`${label}: ${done} ${unit} answered, expected ${count}`);
  rows.push({ label, args, count: done, unit, ...r });
  return done;
}

const oneUser = path.join(BASE, "one-user.txt");
writeFileSync(oneUser, "1\n");

await measure("rank (default), one user: the fixed cost", ["recommend", "--users", oneUser, "--top", "10", "--format", "csv"], 1, "users");
// The users of the training part, as the first full batch counts them: every later batch must answer as many.
const USERS = await measure(
  "rank (default), every user, csv",
  ["recommend", "--users", "all", "--top", "10", "--format", "csv"],
  undefined,
  "users",
);
await measure(
  "rank (default), every user, jsonl with reasons",
  ["recommend", "--users", "all", "--top", "10", "--format", "jsonl"],
  USERS,
  "users",
);
await measure("popularity, every user, csv", ["recommend", "--users", "all", "--top", "10", "--model", "popularity"], USERS, "users");
await measure("als, one user: the fixed cost", ["recommend", "--users", oneUser, "--top", "10", "--model", "als"], 1, "users");
await measure("als, every user, csv", ["recommend", "--users", "all", "--top", "10", "--model", "als"], USERS, "users");

// Pairs: users and movies of the data, deterministic, a few unknown movies among them (cold-start rows).
const pairsFile = path.join(BASE, `pairs-${PAIRS}.csv`);
{
  const users = Math.round(ROWS / 150);
  const lines = ["userId,movieId"];
  for (let i = 0; i < PAIRS; i++) lines.push(`${1 + ((i * 7919) % users)},${i % 1000 === 999 ? 99_999_999 : 1 + ((i * 104_729) % 25_000)}`);
  writeFileSync(pairsFile, `${lines.join("\n")}\n`);
}
await measure("predict --pairs, als, csv", ["predict", "--pairs", pairsFile, "--model", "als", "--format", "csv"], PAIRS, "pairs");
await measure(
  "predict --pairs, keras (seed network), csv",
  ["predict", "--pairs", pairsFile, "--model", "keras", "--format", "csv"],
  PAIRS,
  "pairs",
);
await measure("predict --pairs, als, table (all rows held)", ["predict", "--pairs", pairsFile, "--model", "als"], PAIRS, "pairs");

const fixed = Object.fromEntries(rows.filter((r) => r.count === 1).map((r) => [r.label.split(",")[0], r.seconds]));
const header = ["command", "rows", "wall s", "per second", "per second net of the fixed cost", "peak RSS MiB", "target"];
const body = rows.map((r) => {
  const base = fixed[r.label.split(",")[0]];
  const net = r.count > 1 && base !== undefined ? fmt(Math.round(r.count / (r.seconds - base))) : "-";
  const target = r.label === "rank (default), every user, csv" ? (r.seconds < 60 ? "< 60 s: met" : "< 60 s: NOT met") : "";
  return [
    r.label,
    r.count.toLocaleString("en-US"),
    r.seconds,
    `${fmt(r.count / r.seconds >= 10 ? Math.round(r.count / r.seconds) : r.count / r.seconds)} ${r.unit}/s`,
    net,
    String(Math.round(r.rssMiB)),
    target,
  ];
});
const text = table(header, body);
process.stdout.write(`${text}\n`);
const endLoad = load();
const commands = rows.map(
  (r) => `- ${r.label}: \`ms ${r.args.map((a) => (a === pairsFile || a === oneUser ? path.basename(a) : a)).join(" ")} > /dev/null\``,
);
const markdown = `# Batch recommendations and predictions: \`ms recommend --users all\`, \`ms predict --pairs\`

Command: \`pnpm build && node tools/bench/recommend/bench.mjs\`

Data: \`ms run --dataset synthetic ${Object.entries(P)
  .map(([k, v]) => `-P ${k}=${v}`)
  .join(
    " ",
  )}\` (${ROWS.toLocaleString("en-US")} ratings, ${USERS.toLocaleString("en-US")} users in the training part; ranker: ${rankStep.metrics.model_items} model items of ${rankStep.metrics.items}). ${PAIRS.toLocaleString("en-US")} pairs, one in 1,000 with an unknown movie (scored by the cold-start rule). Every figure is one whole \`ms\` process, stdout to /dev/null; "net" divides by the wall time minus the same command's one-user run (process start, run lookup, reading and indexing the ratings, opening the model), measured in the same run.

${text}

${commands.join("\n")}

Load average (1/5/15 min) at start: ${startLoad}, at end: ${endLoad}, on 2 cores shared with other work: single figures move by tens of per cent.

Machine: ${machine()}; commit ${gitCommit()}; ${new Date().toISOString()}; ${Math.round((Date.now() - started) / 1000)} s
`;
process.stderr.write(`wrote ${writeResult("recommend", markdown)}\n`);
