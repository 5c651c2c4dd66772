#!/usr/bin/env node
/**
 * Quality table: test RMSE of ALS (the als step's defaults), the seed network (`features seed`),
 * the default network (stacked out-of-fold features) and the recommender peers (Surprise's
 * BaselineOnly, SVD, SVD++ and myFM's Bayesian FM, from PyPI in the venv that
 * `tools/python/ensure-venv.sh peers` builds), all on exactly our split: the peers get a CSV
 * written from `splitMask` and score the same test rows (those whose user and movie are in the
 * training part, the rows ALS and the network score). Datasets: ml-latest-small (every row) and
 * synthetic ratings with known noise. `MS_QUALITY_ONLY=small|synthetic`, `MS_QUALITY_PEERS=0`.
 */
import { als, resolveAlsParams } from "@ms/als";
import { splitMask } from "@ms/contracts";
import { etl, readRatingsColumns, resolveEtlParams } from "@ms/etl";
import { fm, resolveFmParams } from "@ms/fm";
import { keras, resolveKerasParams } from "@ms/keras";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { fmt, gitCommit, machine, ML_SMALL, path, ROOT, table, WORK, existsSync, writeResult } from "../lib.mjs";

const only = process.env.MS_QUALITY_ONLY;
const withPeers = process.env.MS_QUALITY_PEERS !== "0";
const SYNTHETIC_ROWS = Number(process.env.MS_QUALITY_SYNTHETIC_ROWS ?? 100_000);
const work = path.join(WORK, "quality");
mkdirSync(work, { recursive: true });

function datasets() {
  const out = [];
  if (only !== "synthetic" && existsSync(path.join(ML_SMALL, "ratings.csv")))
    out.push({ name: "ml-latest-small", csv: path.join(ML_SMALL, "ratings.csv") });
  if (only !== "small") {
    const doc = JSON.parse(
      execFileSync(
        process.execPath,
        [
          path.join(ROOT, "packages/etl/dist/download-bin.js"),
          "--dataset",
          "synthetic",
          "--rows",
          String(SYNTHETIC_ROWS),
          "--cache-dir",
          path.join(work, "cache"),
          "--json",
        ],
        { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
      ),
    );
    out.push({ name: `synthetic ${SYNTHETIC_ROWS.toLocaleString("en")} ratings`, csv: doc.outputs.ratings.path });
  }
  return out;
}

async function measure(ds) {
  const dir = path.join(work, ds.name.replace(/[^a-z0-9]+/gi, "-"));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const ratingsDir = path.join(dir, "etl");
  await etl({ ratingsCsv: ds.csv }, resolveEtlParams({ max_row_limit: -1 }), ratingsDir);
  const rows = [];
  let t = performance.now();
  const a = await als({ ratings: ratingsDir }, resolveAlsParams(), path.join(dir, "als"));
  rows.push([
    "ms-als defaults (Spark ALS-WR, rank 12, reg 0.1)",
    a.metrics.test_rmse,
    a.metrics.test_nrows - a.metrics.test_cold_start_nrows,
    (performance.now() - t) / 1000,
  ]);
  t = performance.now();
  // The fm step's out-of-fold features, as ms run computes them before keras.
  const features = await fm({ ratings: ratingsDir, factors: path.join(dir, "als") }, resolveFmParams(), path.join(dir, "fm"));
  const fmSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const seed = await keras(
    { ratings: ratingsDir, factors: path.join(dir, "als"), features: path.join(dir, "fm") },
    resolveKerasParams({ keras_features: "seed" }),
    path.join(dir, "keras-seed"),
  );
  rows.push([
    "ms-keras `features seed` (the seed's network on in-sample factors)",
    seed.metrics.test_rmse,
    seed.metrics.test_nrows,
    (performance.now() - t) / 1000,
  ]);
  t = performance.now();
  const def = await keras(
    { ratings: ratingsDir, factors: path.join(dir, "als"), features: path.join(dir, "fm") },
    resolveKerasParams(),
    path.join(dir, "keras-default"),
  );
  rows.push([
    "**ms-keras defaults (stacked out-of-fold features)**",
    def.metrics.test_rmse,
    def.metrics.test_nrows,
    (performance.now() - t) / 1000 + fmSeconds,
  ]);
  if (withPeers) {
    const cols = await readRatingsColumns(ratingsDir);
    const mask = splitMask(cols.userIds, cols.movieIds, a.manifest.details.seed, a.manifest.details.splitProp);
    const lines = ["userId,movieId,rating,train"];
    for (let i = 0; i < cols.rows; i++) lines.push(`${cols.userIds[i]},${cols.movieIds[i]},${cols.ratings[i]},${mask[i]}`);
    const splitCsv = path.join(dir, "split.csv");
    writeFileSync(splitCsv, lines.join("\n") + "\n");
    const venv = execFileSync("bash", [path.join(ROOT, "tools/python/ensure-venv.sh"), "peers"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim();
    const peers = JSON.parse(
      execFileSync(path.join(venv, "bin/python"), [path.join(ROOT, "tools/bench/quality/peers.py"), splitCsv], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 1 << 24,
      }),
    );
    for (const [name, r] of Object.entries(peers)) if (name !== "test_rows") rows.push([name, r.test_rmse, peers.test_rows, r.seconds]);
  }
  return { rows, alsRmse: a.metrics.test_rmse, oofSeconds: features.metrics.seconds };
}

const sections = [];
for (const ds of datasets()) {
  process.stderr.write(`quality: ${ds.name}\n`);
  const { rows, alsRmse, oofSeconds } = await measure(ds);
  const body = table(
    ["model", "test RMSE", "vs ms-als", "test rows", "seconds (fit + score)"],
    rows.map(([name, rmse, n, s]) => [name, fmt(rmse, 4), (rmse - alsRmse >= 0 ? "+" : "") + fmt(rmse - alsRmse, 4), n, fmt(s, 1)]),
  );
  sections.push(`### ${ds.name}\n\n${body}\n\nOut-of-fold fits (the fm step, before the default keras step): ${fmt(oofSeconds, 1)} s.\n`);
  process.stdout.write(`\n${ds.name}\n${body}\n`);
}
const md = [
  "# Quality: ALS, the seed network, the default network and the peers, on our split",
  "",
  `${machine()}; commit ${gitCommit()}. \`node tools/bench/quality/bench.mjs\` (pnpm build first). Split: splitMask seed 42, split_prop 0.8; ` +
    "every model scores the test rows whose user and movie are in the training part. Peers: scikit-surprise and myfm from PyPI (tools/python/ensure-venv.sh peers).",
  "",
  ...sections,
].join("\n");
writeResult("quality", md);
