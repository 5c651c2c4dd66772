#!/usr/bin/env node
/**
 * Trainer parity: does ms-keras reach the same test RMSE as TensorFlow Keras for the same work?
 *
 * Per batch size, on ml-latest-small with our ALS factors (the compare bench's inputs), from the
 * ms-keras initial weights of each of a few seeds (every trainer starts from the same point):
 *  1. Unshuffled: the fused trainer, the tfjs reference path and `model.fit(shuffle=False)` see
 *     the same rows in the same order, so only the maths (forward, gradients, Adam, validation
 *     tail) and float32 rounding can differ. Rounding alone is sized by fused against tfjs, both
 *     ours: over thousands of small-batch steps it grows into test-RMSE gaps of a few thousandths.
 *  2. Shuffled (how training runs): fused and TensorFlow over initial seeds x shuffle seeds. One
 *     run's test RMSE moves by 0.005-0.01 with its shuffle alone (and TensorFlow's has outliers),
 *     so only means over many runs, with their standard errors, say whether the trainers differ.
 * Target (issue 16): equal test RMSE within 0.005.
 *
 * Usage: node tools/bench/keras/parity.mjs [--batch 128,1024] [--epochs 10] [--lr 0.001]
 *        [--seeds 42,43,44] [--shuffle-seeds 1,2,3,4,5,6] [--no-tfjs] [--ratings ETL_DIR --als ALS_DIR]
 * Build first: pnpm build. Python Keras comes from tools/python/ensure-venv.sh keras.
 * About 20 minutes on 2 cores. Writes tools/bench/results/DATE-keras-parity.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import { exitCodeFor, MissingArtifactError } from "@ms/contracts";
import { readFactors } from "@ms/als";
import { readRatingsColumns } from "@ms/etl";
import { buildNetwork, evaluateMse, fitFused, fitNetwork, FeatureAssembler, joinRatings, loadTf, validationTail } from "@ms/keras";
import { ML_SMALL, ROOT, WORK, existsSync, gitCommit, machine, path, table, writeNpy, writeResult } from "../lib.mjs";
import { writeFeatureNpys } from "./npy-features.mjs";

const USAGE =
  "usage: node tools/bench/keras/parity.mjs [--batch 128,1024] [--epochs 10] [--lr 0.001] [--hidden 20] [--seeds 42,43,44] [--shuffle-seeds 1,2,3,4,5,6] [--no-tfjs] [--ratings ETL_DIR --als ALS_DIR]\n";
let parsed;
try {
  parsed = parseArgs({
    options: {
      help: { type: "boolean", short: "h", default: false },
      ratings: { type: "string" },
      als: { type: "string" },
      batch: { type: "string", default: "128,1024" },
      epochs: { type: "string", default: "10" },
      lr: { type: "string", default: "0.001" },
      hidden: { type: "string", default: "20" },
      seeds: { type: "string", default: "42,43,44" },
      "shuffle-seeds": { type: "string", default: "1,2,3,4,5,6" },
      "no-tfjs": { type: "boolean", default: false },
    },
  });
} catch (error) {
  process.stderr.write(`parity: ${error.message}\n${USAGE}`);
  process.exit(2);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const BATCHES = values.batch.split(",").map(Number);
const EPOCHS = Number(values.epochs);
const LR = Number(values.lr);
const H = Number(values.hidden);
const INIT_SEEDS = values.seeds.split(",").map(Number);
const SHUFFLE_SEEDS = values["shuffle-seeds"].split(",").filter(Boolean).map(Number);
const VALIDATION = 0.2;
const log = (msg) => process.stderr.write(`[keras-parity] ${msg}\n`);
const started = performance.now();
const loadStart = os.loadavg();
const dir = path.join(WORK, "keras-parity");
mkdirSync(dir, { recursive: true });

/** The compare bench's inputs: ml-latest-small through ms-etl and ms-als (rank 12, 10 iterations, seed 42). */
function inputs() {
  if (values.ratings && values.als) return { ratingsDir: values.ratings, alsDir: values.als };
  const csv = path.join(ML_SMALL, "ratings.csv");
  if (!existsSync(csv)) throw new MissingArtifactError(`no ml-latest-small at ${csv}: set MS_MOVIELENS_SMALL or pass --ratings and --als`);
  const ratingsDir = path.join(dir, "etl");
  const alsDir = path.join(dir, "als");
  const run = (bin, args) =>
    execFileSync(process.execPath, [path.join(ROOT, bin), ...args, "--json", "--log-level", "warn"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  if (!existsSync(path.join(ratingsDir, "manifest.json")))
    run("packages/etl/dist/bin.js", ["--ratings-csv", csv, "--out", ratingsDir, "--max-row-limit", "-1"]);
  if (!existsSync(path.join(alsDir, "manifest.json")))
    run("packages/als/dist/bin.js", [
      "--ratings",
      ratingsDir,
      "--out",
      alsDir,
      "--als-rank",
      "12",
      "--als-max-iter",
      "10",
      "--als-reg-param",
      "0.1",
      "--seed",
      "42",
      "--split-prop",
      "0.8",
      "--als-cold-start-strategy",
      "drop",
    ]);
  return { ratingsDir, alsDir };
}

/** A bad input (a missing artifact, no ml-latest-small) is one line naming it and the bins' exit code, not a stack. */
function fail(error) {
  process.stderr.write(`parity: ${error.message}\n`);
  process.exit(exitCodeFor(error));
}
const { ratingsDir, alsDir } = (() => {
  try {
    return inputs();
  } catch (error) {
    return fail(error);
  }
})();
const [factors, ratings] = await Promise.all([readFactors(alsDir), readRatingsColumns(ratingsDir)]).catch(fail);
const joined = joinRatings(ratings, factors, { seed: factors.details.seed, splitProp: factors.details.splitProp });
const assembler = new FeatureAssembler("factors", factors, joined);
const { fitRows, valRows } = validationTail(joined.trainRows, VALIDATION);
// Keras takes validation_split's tail of x_train as ms-keras does, so it gets all training rows in file order.
writeFeatureNpys(dir, assembler, { train: joined.trainRows, test: joined.testRows });
const { tf } = await loadTf("wasm");
/** ms-keras's seeded initial weights (glorot-uniform kernels, zero biases), also written as .npy for Keras. */
function initialWeights(seed) {
  const initDir = path.join(dir, `init-${seed}`);
  mkdirSync(initDir, { recursive: true });
  const model = buildNetwork(tf, assembler.width, { hiddenUnits: H, learningRate: LR, seed, outputBias: 0 });
  const weights = model.getWeights();
  weights.forEach((w, i) => writeNpy(path.join(initDir, `w${i}.npy`), w.dataSync(), w.shape));
  const copies = weights.map((w) => w.dataSync().slice());
  model.dispose();
  return { initDir, weights: copies };
}
const venv = execFileSync(path.join(ROOT, "tools/python/ensure-venv.sh"), ["keras"], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
}).trim();
let tfVersion = "";

/** Keras `model.fit` from `init`; shuffled with `shuffleSeed`, or in row order when it is undefined. */
function tensorflow(batch, init, shuffleSeed) {
  const args = [
    path.join(ROOT, "packages/keras/reference/keras_tf.py"),
    dir,
    String(EPOCHS),
    String(batch),
    String(LR),
    String(EPOCHS),
    "0.0001",
    String(VALIDATION),
    String(H),
    String(shuffleSeed ?? 0),
    init.initDir,
  ];
  const r = spawnSync(path.join(venv, "bin/python"), args, {
    encoding: "utf8",
    env: { ...process.env, MS_TF_SHUFFLE: shuffleSeed === undefined ? "0" : "1" },
  });
  if (r.status !== 0) throw new Error(`keras_tf.py exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const doc = JSON.parse(r.stdout.trim().split("\n").pop());
  tfVersion = `TensorFlow ${doc.tensorflow}, Keras ${doc.keras}`;
  return { history: doc.loss.map((loss, e) => ({ loss, val_loss: doc.val_loss[e] })), test: doc.test_rmse };
}

async function fused(batch, init, shuffleSeed) {
  const options = {
    epochs: EPOCHS,
    batchSize: batch,
    patience: EPOCHS,
    minDelta: 1e-4,
    seed: shuffleSeed ?? 0,
    shuffle: shuffleSeed !== undefined,
    hiddenUnits: H,
    learningRate: LR,
    threads: 1,
  };
  const f = await fitFused(assembler, fitRows, valRows, init.weights, options);
  return { history: f.history, test: Math.sqrt(await f.mse(joined.testRows)) };
}

/** The tfjs reference path (wasm backend), unshuffled. */
async function tfjs(batch, init) {
  const model = buildNetwork(tf, assembler.width, { hiddenUnits: H, learningRate: LR, seed: 0, outputBias: 0 });
  model.setWeights(init.weights.map((w, i) => tf.tensor(w, model.weights[i].shape)));
  const r = await fitNetwork(tf, model, assembler, fitRows, valRows, {
    epochs: EPOCHS,
    batchSize: batch,
    patience: EPOCHS,
    minDelta: 1e-4,
    seed: 0,
    shuffle: false,
  });
  const test = Math.sqrt(await evaluateMse(tf, model, assembler, joined.testRows));
  model.dispose();
  return { history: r.history, test };
}

const f5 = (x) => (x === undefined ? "-" : x.toFixed(5));
const f4 = (x) => (x === undefined ? "-" : x.toFixed(4));
const meanSd = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { m, sd, se: sd / Math.sqrt(xs.length) };
};
const inits = new Map(INIT_SEEDS.map((seed) => [seed, initialWeights(seed)]));
const sections = [];
const summary = [];
for (const batch of BATCHES) {
  const same = [];
  const ours = [];
  const theirs = [];
  for (const seed of INIT_SEEDS) {
    const init = inits.get(seed);
    log(`batch ${batch}, initial weights of seed ${seed}: unshuffled fused, tfjs, TensorFlow...`);
    const run = {
      seed,
      fused: await fused(batch, init),
      tfjs: values["no-tfjs"] ? undefined : await tfjs(batch, init),
      tf: tensorflow(batch, init),
    };
    same.push(run);
    const epochRows = Array.from({ length: EPOCHS }, (_, e) => [
      String(e + 1),
      f5(run.fused.history[e]?.loss),
      f5(run.tfjs?.history[e]?.loss),
      f5(run.tf.history[e]?.loss),
      f5(run.fused.history[e]?.val_loss),
      f5(run.tfjs?.history[e]?.val_loss),
      f5(run.tf.history[e]?.val_loss),
    ]);
    epochRows.push(["test RMSE", f5(run.fused.test), f5(run.tfjs?.test), f5(run.tf.test), "", "", ""]);
    const o = [];
    const t = [];
    for (const s of SHUFFLE_SEEDS) {
      o.push((await fused(batch, init, s)).test);
      t.push(tensorflow(batch, init, s).test);
      log(`batch ${batch}, initial seed ${seed}, shuffle seed ${s}: fused ${f4(o.at(-1))}, TensorFlow ${f4(t.at(-1))}`);
    }
    ours.push(...o);
    theirs.push(...t);
    sections.push(
      `### Batch ${batch}, initial weights of seed ${seed}: unshuffled, epoch by epoch (loss, val_loss: mean squared error)`,
      "",
      table(["epoch", "loss fused", "loss tfjs", "loss TF", "val fused", "val tfjs", "val TF"], epochRows),
      "",
      ...(SHUFFLE_SEEDS.length
        ? [
            `Shuffled, test RMSE for shuffle seeds ${SHUFFLE_SEEDS.join(", ")}: fused ${o.map(f4).join(", ")} (mean ${f4(meanSd(o).m)}); TF ${t.map(f4).join(", ")} (mean ${f4(meanSd(t).m)}).`,
            "",
          ]
        : []),
    );
  }
  const gaps = (key) => same.map((r) => (r[key] ? r.fused.test - r[key].test : undefined));
  const worst = (xs) => (xs.some((x) => x === undefined) ? undefined : Math.max(...xs.map(Math.abs)));
  const o = ours.length ? meanSd(ours) : undefined;
  const t = theirs.length ? meanSd(theirs) : undefined;
  summary.push([
    String(batch),
    gaps("tf").map(f4).join(", "),
    values["no-tfjs"] ? "-" : gaps("tfjs").map(f4).join(", "),
    o ? `${f4(o.m)} ± ${f4(o.se)}` : "-",
    t ? `${f4(t.m)} ± ${f4(t.se)}` : "-",
    o && t ? `${f4(o.m - t.m)} ± ${f4(Math.sqrt(o.se ** 2 + t.se ** 2))}` : "-",
    o && t ? (Math.abs(o.m - t.m) <= 0.005 ? "yes" : "no") : "-",
    o && t ? `${f4(o.sd)} / ${f4(t.sd)}` : "-",
  ]);
  log(
    `batch ${batch}: unshuffled fused - TF ${gaps("tf").map(f4).join(", ")} (largest ${f4(worst(gaps("tf")))}); shuffled fused ${o ? f4(o.m) : "-"}, TF ${t ? f4(t.m) : "-"}`,
  );
}

const md = [
  "# Keras trainer parity: ms-keras (fused WebAssembly, tfjs) against TensorFlow Keras",
  "",
  `Command: \`pnpm build && node tools/bench/keras/parity.mjs ${process.argv.slice(2).join(" ")}\``,
  "",
  `ml-latest-small with our ALS factors (rank 12): ${fitRows.length.toLocaleString("en-US")} fit rows, ${valRows.length.toLocaleString("en-US")} validation (the tail), ${joined.testRows.length.toLocaleString("en-US")} test. ` +
    `The seed's network (Dense 30 relu, Dense ${H} relu, Dense 1), Adam lr ${LR}, ${EPOCHS} epochs, no early stopping; for each of the initial seeds ${INIT_SEEDS.join(", ")} every trainer starts from ms-keras's initial weights of that seed. ${tfVersion}.`,
  "",
  "Unshuffled: the same rows in the same order on every side, so only the maths, and float32 rounding, can differ (the gap of fused to tfjs, both ours, sizes the rounding alone: the two sum in other orders). " +
    `Shuffled: mean ± standard error over ${INIT_SEEDS.length} initial seeds x ${SHUFFLE_SEEDS.length} shuffle seeds (each side draws its own permutations); sd is the spread over those runs (initial weights and shuffles).`,
  "",
  table(
    [
      "batch",
      "unshuffled test RMSE fused - TF, per initial seed",
      "fused - tfjs",
      "shuffled test RMSE fused",
      "TF",
      "fused - TF",
      "within 0.005 (target)",
      "sd over the runs fused / TF",
    ],
    summary,
  ),
  "",
  ...sections,
  `Load average (1/5/15 min) at start: ${loadStart.map((x) => x.toFixed(1)).join(" ")}, at end: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}.`,
  "",
  `Machine: ${machine()}; commit ${gitCommit()}; ${new Date().toISOString()}; ${((performance.now() - started) / 1000).toFixed(0)} s`,
  "",
].join("\n");
process.stdout.write(md);
log(`written ${writeResult("keras-parity", md)}`);
