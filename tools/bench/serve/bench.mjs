#!/usr/bin/env node
/**
 * `ms serve` against `mlflow models serve --env-manager local` (after `pnpm build`):
 * `node tools/bench/run.mjs serve`. One `ms run` (synthetic ratings, default pipeline), then a real
 * load generator (autocannon) against both servers, one after the other on this machine:
 *   1. single-pair requests, 32 connections, MS_BENCH_SERVE_SECONDS (30) each;
 *   2. batches of 1,000 pairs, 32 connections, the same time;
 *   3. the same 200 pairs through both servers: the largest difference of their predictions;
 *   4. MS_BENCH_SERVE_MIXED_SECONDS (60) of mixed load on ms serve: good single pairs beside bad
 *      JSON, missing columns, 50 MB bodies and clients that stall, unknown ids (a 200: the cold-start rule), every answer's
 *      status counted, the server's RSS sampled each second; then a SIGTERM with requests in
 *      progress, which must be answered (200) before the server exits 0.
 * The baseline model: the run's MLflow Model (`runs:/<keras run>/model`) when the run logged one,
 * else a hand-made numpy pyfunc of the run's ALS model (pyfunc.mjs), which ms serve then serves
 * too (`--model als`), so both answer from the same model. Environment: MS_BENCH_SERVE_ROWS
 * (100,000 synthetic ratings).
 */
import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, existsSync, readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { ROOT, WORK, freshDir, gitCommit, machine, syntheticRatingsCsv, table, writeResult } from "../lib.mjs";
import { bigBody, partialRequest, sampleRss } from "./clients.mjs";
import { writeAlsPyfunc } from "./pyfunc.mjs";

const ROWS = Number(process.env.MS_BENCH_SERVE_ROWS ?? 100_000);
const SECONDS = Number(process.env.MS_BENCH_SERVE_SECONDS ?? 30);
const MIXED_SECONDS = Number(process.env.MS_BENCH_SERVE_MIXED_SECONDS ?? 60);
const BASE = freshDir(WORK, "serve");
const MS = path.join(ROOT, "packages/driver/dist/bin.js");
const VENV = execFileSync(path.join(ROOT, "tools/mlflow/ensure-venv.sh"), { encoding: "utf8" }).trim();
const env = { ...process.env, MS_CACHE_DIR: path.join(BASE, "cache"), MLFLOW_TRACKING_URI: path.join(BASE, "mlruns"), LOG_LEVEL: "info" };
const log = (m) => process.stderr.write(`bench serve: ${m}\n`);
const loadBefore = os.loadavg();

log(`ms run on ${ROWS.toLocaleString("en-US")} synthetic ratings`);
const csv = await syntheticRatingsCsv(ROWS);
const run = JSON.parse(
  execFileSync(process.execPath, [MS, "run", "--ratings-csv", csv, "-P", "max_row_limit=-1", "--json"], {
    env,
    cwd: BASE,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 1 << 26,
  }),
);
const stepOf = (name) => run.steps.find((s) => s.step === name);
const { readFactors } = await import("@ms/als");
const factors = await readFactors(stepOf("als").outputs.factors.dir);

/** The run's own MLflow Model (the parent run's tag ms.model.uri, `runs:/<step run>/model`), if it logged one. */
function loggedModel() {
  for (const exp of readdirSync(path.join(BASE, "mlruns"))) {
    const tag = path.join(BASE, "mlruns", exp, run.runId, "tags", "ms.model.uri");
    if (existsSync(tag)) return readFileSync(tag, "utf8").trim();
  }
  return undefined;
}
const logged = loggedModel();
let modelDir;
let kind = "keras";
if (!logged) {
  modelDir = path.join(BASE, "pyfunc");
  const versions = JSON.parse(
    execFileSync(
      path.join(VENV, "bin/python"),
      [
        "-c",
        "import json,sys,mlflow,numpy,pandas; print(json.dumps({'mlflow': mlflow.__version__, 'numpy': numpy.__version__, 'pandas': pandas.__version__, 'python': sys.version.split()[0]}))",
      ],
      {
        encoding: "utf8",
      },
    ),
  );
  writeAlsPyfunc(modelDir, factors, versions);
  kind = "als";
}
log(`baseline model: ${logged ? `the run's MLflow Model ${logged}` : `a hand-made numpy pyfunc of the run's ALS model (${modelDir})`}`);

// --- servers ---------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url, child, seconds = 180) {
  for (let i = 0; i < seconds * 4; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/ping`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer /ping within ${seconds} s`);
}

async function startMs(name, args) {
  const port = await freePort();
  const child = spawn(process.execPath, [MS, "serve", "--port", String(port), ...args], {
    env,
    cwd: BASE,
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr.pipe(createWriteStream(path.join(BASE, `${name}.log`)));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child);
  return { name, url, port, child };
}

async function startMlflow() {
  const port = await freePort();
  // The run's own model by its URI (the file store read through MLFLOW_TRACKING_URI), else the hand-made directory.
  const uri = logged ?? modelDir;
  const child = spawn(
    path.join(VENV, "bin/mlflow"),
    ["models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", String(port)],
    {
      env: { ...env, MLFLOW_ALLOW_FILE_STORE: "true", PATH: `${path.join(VENV, "bin")}:${process.env.PATH}` },
      cwd: BASE,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  child.stderr.pipe(createWriteStream(path.join(BASE, "mlflow.log")));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child);
  return { name: "mlflow models serve", url, port, child };
}

async function stop(server) {
  if (server.child.exitCode !== null) return server.child.exitCode;
  const exited = new Promise((resolve) => server.child.once("exit", (code, signal) => resolve(code ?? signal)));
  server.child.kill("SIGTERM");
  return exited;
}

// --- requests --------------------------------------------------------------------------------

// Pairs of ids both models know: users and movies of the factors, drawn with a fixed seed.
let seed = 42;
const rand = (n) => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const PAIRS = Array.from({ length: 1000 }, () => [
  factors.userIds[rand(factors.userIds.length)],
  factors.itemIds[rand(factors.itemIds.length)],
]);
const splitBody = (pairs) => JSON.stringify({ dataframe_split: { columns: ["userId", "movieId"], data: pairs } });
const SINGLE = PAIRS.map((p) => splitBody([p]));
const BATCHES = Array.from({ length: 10 }, (_, b) =>
  splitBody(PAIRS.map(([u, m]) => [u, factors.itemIds[(m + b) % factors.itemIds.length]])),
);
const JSON_HEADERS = { "content-type": "application/json" };

function cycling(bodies) {
  let i = 0;
  return [
    { method: "POST", path: "/invocations", headers: JSON_HEADERS, setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }) },
  ];
}

async function load(url, bodies, connections, seconds) {
  // A few seconds first, not counted: both servers answer warm (JIT, caches, connection pools).
  await autocannon({ url, connections, duration: 3, requests: cycling(bodies) });
  const r = await autocannon({ url, connections, duration: seconds, requests: cycling(bodies) });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    ok: r["2xx"],
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

async function predictions(url, pairs) {
  const res = await fetch(`${url}/invocations`, { method: "POST", headers: JSON_HEADERS, body: splitBody(pairs) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()).predictions;
}

// --- 1-3: ms serve against mlflow models serve ------------------------------------------------

const rows = [];
const mlflow = await startMlflow();
const msSame = await startMs("ms-serve", kind === "als" ? ["--model", "als"] : []);
const sample = PAIRS.slice(0, 200);
const [a, b] = [await predictions(msSame.url, sample), await predictions(mlflow.url, sample)];
const maxDiff = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
log(`predictions of 200 pairs: largest difference ${maxDiff.toExponential(2)}`);
for (const [what, bodies] of [
  ["1 pair", SINGLE],
  ["1,000 pairs", BATCHES],
]) {
  log(`${what}: mlflow models serve, ${SECONDS} s`);
  const base = await load(mlflow.url, bodies, 32, SECONDS);
  log(`${what}: ms serve (${kind}), ${SECONDS} s`);
  const ours = await load(msSame.url, bodies, 32, SECONDS);
  rows.push([what, "mlflow models serve", kind, base.rps, base.p50, base.p99, base.ok, base.non2xx + base.errors, 1]);
  rows.push([what, "ms serve", kind, ours.rps, ours.p50, ours.p99, ours.ok, ours.non2xx + ours.errors, ours.rps / base.rps]);
}
await stop(mlflow);
await stop(msSame);

// The run's final model (keras) on ms serve, single pairs, for the record.
const msFinal = kind === "keras" ? undefined : await startMs("ms-serve-keras", []);
if (msFinal) {
  log(`1 pair: ms serve (keras), ${SECONDS} s`);
  const k = await load(msFinal.url, SINGLE, 32, SECONDS);
  rows.push(["1 pair", "ms serve", "keras", k.rps, k.p50, k.p99, k.ok, k.non2xx + k.errors, "-"]);
  await stop(msFinal);
}

// --- 4: mixed load with malformed requests, then SIGTERM with requests in progress ---------------

log(`mixed load on ms serve (keras), ${MIXED_SECONDS} s`);
const mixed = await startMs("ms-serve-mixed", ["--request-timeout-seconds", "2"]);
const rss = sampleRss(mixed.child.pid);
const bad = (body) => [{ method: "POST", path: "/invocations", headers: JSON_HEADERS, body }];
const [unknownUser] = [Math.max(...factors.userIds) + 1000];
const until = Date.now() + MIXED_SECONDS * 1000;
const counts = { big: {}, slow: {} };
const tally = (bucket, status) => (bucket[status] = (bucket[status] ?? 0) + 1);
const bigLoop = (async () => {
  while (Date.now() < until) tally(counts.big, await bigBody(mixed.port, 50 * 1024 * 1024));
})();
const slowLoop = Promise.all(
  Array.from({ length: 4 }, async () => {
    while (Date.now() < until) tally(counts.slow, await partialRequest(mixed.port, SINGLE[0], 10).response);
  }),
);
const [good, badJson, missing, unknown] = await Promise.all([
  autocannon({ url: mixed.url, connections: 16, duration: MIXED_SECONDS, requests: cycling(SINGLE) }),
  autocannon({ url: mixed.url, connections: 2, duration: MIXED_SECONDS, requests: bad('{"inputs": [[1, ') }),
  autocannon({ url: mixed.url, connections: 2, duration: MIXED_SECONDS, requests: bad('{"dataframe_records": [{"userId": 1}]}') }),
  autocannon({ url: mixed.url, connections: 2, duration: MIXED_SECONDS, requests: bad(splitBody([[unknownUser, PAIRS[0][1]]])) }),
]);
await Promise.all([bigLoop, slowLoop]);
const inProgress = Array.from({ length: 4 }, () => partialRequest(mixed.port, SINGLE[1], 10));
await new Promise((r) => setTimeout(r, 300));
const exited = new Promise((resolve) => mixed.child.once("exit", (code, signal) => resolve(code ?? signal)));
mixed.child.kill("SIGTERM");
await new Promise((r) => setTimeout(r, 300));
let refusedAfter = false;
try {
  await fetch(`${mixed.url}/ping`);
} catch {
  refusedAfter = true;
}
for (const p of inProgress) p.finish();
const drained = await Promise.all(inProgress.map((p) => p.response));
const exitCode = await exited;
const samples = rss.stop();

const mixedRows = [
  ["good single pairs (16 conn.)", good["2xx"], good.non2xx, good.errors + good.timeouts, "2xx", `p99 ${good.latency.p99} ms`],
  ["bad JSON (2 conn.)", badJson["4xx"], badJson["2xx"] + badJson["5xx"], badJson.errors, "400", ""],
  ["missing column (2 conn.)", missing["4xx"], missing["2xx"] + missing["5xx"], missing.errors, "400", ""],
  // An unknown id is scored by the run's cold-start rule, as ms predict and the pyfunc score it: a 200.
  ["unknown ids, cold-start rule (2 conn.)", unknown["2xx"], unknown.non2xx, unknown.errors, "2xx", ""],
  [
    "50 MB bodies (1 conn.)",
    counts.big[413] ?? 0,
    Object.entries(counts.big)
      .filter(([s]) => s !== "413")
      .reduce((n, [, c]) => n + c, 0),
    0,
    "413",
    JSON.stringify(counts.big),
  ],
  [
    "stalled clients (4 conn.)",
    counts.slow[408] ?? 0,
    Object.entries(counts.slow)
      .filter(([s]) => s !== "408")
      .reduce((n, [, c]) => n + c, 0),
    0,
    "408",
    JSON.stringify(counts.slow),
  ],
  [
    "in progress at SIGTERM",
    drained.filter((s) => s === 200).length,
    drained.filter((s) => s !== 200).length,
    0,
    "200",
    `exit ${exitCode}, new connections refused: ${refusedAfter}`,
  ],
];
const loadAfter = os.loadavg();

const header = ["request", "server", "model", "req/s", "p50 ms", "p99 ms", "2xx", "errors", "x mlflow"];
const mixedHeader = ["mixed load", "expected answers", "other answers", "socket errors", "expected", "notes"];
const rssLine = `RSS of ms serve under mixed load: ${samples[0]?.toFixed(0)} MiB at start, max ${Math.max(...samples).toFixed(0)} MiB, ${samples[samples.length - 1]?.toFixed(0)} MiB at the end (${samples.length} samples, one a second)`;
const loadLine = `load average (1, 5, 15 min): ${loadBefore.map((x) => x.toFixed(2)).join(", ")} before, ${loadAfter.map((x) => x.toFixed(2)).join(", ")} after (the machine is shared)`;
const text = [
  table(header, rows),
  "",
  `largest |ms serve - mlflow| over 200 pairs: ${maxDiff.toExponential(2)}`,
  "",
  table(mixedHeader, mixedRows),
  "",
  rssLine,
  loadLine,
].join("\n");
process.stdout.write(`${text}\n`);
const file = writeResult(
  "serve",
  [
    "# ms serve against mlflow models serve",
    "",
    `\`node tools/bench/run.mjs serve\`, commit ${gitCommit()}, ${machine()}. One \`ms run\` on ${ROWS.toLocaleString("en-US")} synthetic ratings (default pipeline);`,
    `autocannon (in the bench's process) and both servers on this machine; ${SECONDS} s per line, 32 connections; mixed load ${MIXED_SECONDS} s.`,
    logged
      ? "Baseline: the run's own MLflow Model (`runs:/<keras run>/model`), served by `mlflow models serve --env-manager local` (1 uvicorn worker, its default)."
      : "Baseline: the run has no MLflow Model of its own yet (h-mlmodel's branch not merged), so a hand-made numpy pyfunc of the run's ALS model (tools/bench/serve/pyfunc.mjs: MLmodel, loader_module, code/, data/, signature userId, movieId -> prediction) is served by `mlflow models serve --env-manager local` (1 uvicorn worker, its default), and ms serve serves the same ALS model (`--model als`). The keras line is the run's final model on ms serve.",
    "",
    text,
    "",
  ].join("\n"),
);
log(`wrote ${file}`);
