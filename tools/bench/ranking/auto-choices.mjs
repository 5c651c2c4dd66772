/**
 * The rank step's `auto` choice (λ, β) on each fold a ranking run exported (tools/bench/work/ranking/
 * <dataset>/fold-k/train.csv: the training part the step saw, so the same choice), with the
 * validation scores behind it and the selection's CPU seconds. Every candidate's validation scores
 * are also written to tools/bench/work/ranking/choices.json, which choice.py reads.
 * `node tools/bench/ranking/auto-choices.mjs` after `node tools/bench/run.mjs ranking` (pnpm build first).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { selectEase } from "@ms/rank";
import { path, WORK } from "../lib.mjs";

const base = path.join(WORK, "ranking");
const saved = {};
for (const d of ["ml-latest-small", "taste-100000", "lowrank-100000", "drift-100000", "powerlaw-100000"])
  for (let f = 1; f <= 5; f++) {
    const file = `${base}/${d}/fold-${f}/train.csv`;
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, "utf8").trim().split("\n").slice(1);
    const cols = { userIds: new Int32Array(lines.length), movieIds: new Int32Array(lines.length), ratings: new Float32Array(lines.length) };
    lines.forEach((l, i) => {
      const [u, m, r] = l.split(",");
      cols.userIds[i] = +u;
      cols.movieIds[i] = +m;
      cols.ratings[i] = +r;
    });
    const c0 = process.cpuUsage();
    const s = await selectEase(cols, new Uint8Array(lines.length).fill(1), {
      lambda: "auto",
      penalty: "auto",
      maxItems: 1500,
      neighbors: 0,
      k: 10,
      minRating: 0,
      maxUsers: 2000,
      seed: 42,
    });
    const c = process.cpuUsage(c0);
    const ch = s.trials[s.chosen];
    const best = s.trials.reduce((a, t) => (t.ndcg > a.ndcg ? t : a));
    const pop = s.trials.find((t) => t.model === "popularity");
    saved[`${d}|${f}`] = { chosen: [s.lambda, s.penalty], trials: s.trials };
    console.log(
      [
        d,
        f,
        s.lambda,
        s.penalty,
        ch.ndcg.toFixed(4),
        ch.coverage.toFixed(3),
        `${best.model}:${best.lambda}/${best.penalty}`,
        best.ndcg.toFixed(4),
        pop.ndcg.toFixed(4),
        s.popularityBest,
        ((c.user + c.system) / 1e6).toFixed(1),
      ].join(" | "),
    );
  }
writeFileSync(path.join(base, "choices.json"), JSON.stringify(saved));
