/**
 * The ranking step through the built bin on small synthetic data: `ms run --json` has it last,
 * with `<model>_<metric>_at_<k>` for every model of the run (als, keras, fm, the ranker,
 * popularity), finite and in range; the ranker's figures are the rank step's own (one k, one
 * relevance rule, one user sample); the parent MLflow run carries them step-prefixed; the report
 * shows the table beside the test RMSE chart and three sample users; fm_model=none leaves fm out
 * with a note; `-P rank_k` renames them.
 */
import { readFile } from "node:fs/promises";
import { createTracker } from "@ms/tracking";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, runJson, sandbox, type RunDoc, type Sandbox, type StepDoc } from "./__tests__/harness.js";

const MODELS = ["als", "keras", "fm", "ranker", "popularity"];
const METRICS = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage", "popularity_bias"];

let box: Sandbox;
let doc: RunDoc;
const step = (d: RunDoc, name: string) => d.steps.find((s) => s.step === name) as StepDoc;

beforeAll(async () => {
  box = await sandbox("ms-driver-ranking-");
  doc = await runJson(SMALL, box);
}, 300_000);
afterAll(async () => box.dispose());

describe("the ranking step in ms run --json", () => {
  it("runs last and publishes every model's metrics at k = 10, finite and in range", () => {
    expect(doc.steps.at(-1)?.step).toBe("ranking");
    const m = step(doc, "ranking").metrics;
    expect(m.eval_users).toBeGreaterThan(10);
    for (const model of MODELS)
      for (const metric of METRICS) {
        const v = m[`${model}_${metric}_at_10`];
        expect(Number.isFinite(v), `${model}_${metric}_at_10`).toBe(true);
        if (metric === "popularity_bias") expect(v).toBeGreaterThan(0);
        else expect(v >= 0 && v <= 1, `${model}_${metric}_at_10 = ${v}`).toBe(true);
      }
    expect(Object.keys(m).length).toBe(1 + MODELS.length * METRICS.length);
    // Popularity lists the same most-rated movies for everyone: the smallest coverage, the largest bias.
    expect(m.popularity_coverage_at_10).toBeLessThan(m.als_coverage_at_10);
    expect(m.popularity_popularity_bias_at_10).toBeGreaterThan(m.als_popularity_bias_at_10);
  });

  it("measures the ranker as the rank step measures itself, and popularity alike", () => {
    const rank = step(doc, "rank").metrics;
    const m = step(doc, "ranking").metrics;
    expect(m.eval_users).toBe(rank.eval_users);
    for (const metric of ["ndcg", "precision", "recall", "map", "coverage"]) {
      expect(m[`ranker_${metric}_at_10`], metric).toBeCloseTo(rank[`${metric}_at_10`], 10);
      expect(m[`popularity_${metric}_at_10`], metric).toBeCloseTo(rank[`popularity_${metric}_at_10`], 10);
    }
  });

  it("logs them to the step's run and, step-prefixed, to the parent run", async () => {
    const tracker = createTracker(box.mlruns, { env: {} });
    const parent = await tracker.getRun(doc.runId);
    const child = await tracker.getRun(step(doc, "ranking").runId);
    for (const model of MODELS) {
      expect(parent.metrics[`ranking_${model}_ndcg_at_10`].value).toBeCloseTo(step(doc, "ranking").metrics[`${model}_ndcg_at_10`], 10);
      expect(child.metrics[`${model}_coverage_at_10`].value).toBeCloseTo(step(doc, "ranking").metrics[`${model}_coverage_at_10`], 10);
    }
  });

  it("puts the table beside the test RMSE chart in the report, and three sample users' lists", async () => {
    const html = await readFile(doc.report!, "utf8");
    const figures = [...html.matchAll(/<figure id="([\w-]+)"/g)].map((x) => x[1]);
    expect(figures.indexOf("ranking-metrics")).toBe(figures.indexOf("test-rmse") + 1);
    for (const model of MODELS) expect(html).toMatch(new RegExp(`<tr><td>${model}(?: <span[^>]*>\\(default\\)</span>)?</td>`));
    const samples = [...html.matchAll(/<div class="sample" id="sample-(\d+)">/g)].map((x) => Number(x[1]));
    expect(samples).toHaveLength(3);
    expect(new Set(samples).size).toBe(3);
    expect(html).not.toMatch(/NaN|Infinity/);
  });

  it("leaves out fm's full fit, with a note in the report, when the fm step kept none", async () => {
    const none = await runJson([...SMALL, "-P", "fm_model=none", "-P", "keras_features=factors"], box);
    const m = step(none, "ranking").metrics;
    expect(Object.keys(m).filter((k) => k.startsWith("fm_"))).toEqual([]);
    for (const model of ["als", "keras", "ranker", "popularity"]) expect(Number.isFinite(m[`${model}_ndcg_at_10`]), model).toBe(true);
    expect(await readFile(none.report!, "utf8")).toContain("fm_model=none, so it has no full fit to rank with");
  }, 300_000);

  it("lists and measures the same on one thread as on two (rank_num_threads: not in the key)", async () => {
    const runWith = (threads: number) =>
      runJson([...SMALL, "-P", `rank_num_threads=${threads}`, "--force", "rank", "--force", "ranking"], box);
    const [one, two] = [await runWith(1), await runWith(2)];
    const timeless = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.endsWith("seconds")));
    for (const name of ["rank", "ranking"]) {
      expect(step(one, name).cached, name).toBe(false);
      expect(timeless(step(two, name).metrics), name).toEqual(timeless(step(one, name).metrics));
    }
    expect(timeless(step(one, "ranking").metrics)).toEqual(timeless(step(doc, "ranking").metrics));
  }, 300_000);

  it("names the metrics by -P rank_k, and reuses every other entry", async () => {
    const five = await runJson([...SMALL, "-P", "rank_k=5"], box);
    const m = step(five, "ranking").metrics;
    expect(Number.isFinite(m.keras_ndcg_at_5)).toBe(true);
    expect(m.keras_ndcg_at_10).toBeUndefined();
    for (const name of ["download", "etl", "als", "fm", "keras"]) expect(step(five, name).cached, name).toBe(true);
  }, 300_000);
});
