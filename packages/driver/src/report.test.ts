/**
 * The run report through the built bin on small synthetic data: report.html is written, logged as
 * an artifact of the parent run and named in `--json` and the text summary; it is self-contained
 * (no script, nothing fetched) with one SVG chart per figure; its test RMSE of each model agrees
 * with the step's own metric; `--no-report` leaves it out. (The charts and the page alone, and the
 * browser test, are @ms/report's.)
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { createTracker } from "@ms/tracking";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let doc: RunDoc;
let html: string;

beforeAll(async () => {
  box = await sandbox("ms-driver-report-");
  // The factors feature set, whose keras model scores any pair (the test figures include it).
  doc = await runJson([...SMALL, "-P", "keras_epochs=2", "-P", "keras_features=factors"], box);
  html = await readFile(doc.report!, "utf8");
});
afterAll(async () => box.dispose());

describe("report.html", () => {
  it("is an artifact of the parent run, at the path --json gives", async () => {
    const tracker = createTracker(box.mlruns, { env: {} });
    expect((await tracker.listArtifacts(doc.runId)).map((a) => a.path)).toContain("report.html");
    const run = await tracker.getRun(doc.runId);
    expect(doc.report).toBe(path.join(new URL(run.info.artifactUri).pathname, "report.html"));
  });

  it("holds every chart as inline SVG, with no script and nothing to fetch", () => {
    for (const id of ["keras-loss", "als-loss", "test-rmse", "errors-als", "errors-keras"]) {
      const figure = new RegExp(`<figure id="${id}" class="chart"><figcaption>[^<]+</figcaption>\\s*<svg[^>]*>[\\s\\S]*?</svg>`);
      expect(html, id).toMatch(figure);
    }
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/NaN|Infinity/);
  });

  it("scores each model on the test rows as the step did, beside the baselines", async () => {
    const meta = path.join(box.cache, "meta");
    const memo = (await readdir(meta)).find((f) => f.startsWith("report-"))!;
    const evaluation = JSON.parse(await readFile(path.join(meta, memo), "utf8")) as { scores: { model: string; rmse: number }[] };
    const score = (m: string) => evaluation.scores.find((s) => s.model === m)!.rmse;
    expect(score("als")).toBeCloseTo(doc.steps[2].metrics.test_rmse, 4);
    expect(score("keras")).toBeCloseTo(doc.steps[4].metrics.test_rmse, 3);
    expect(score("global mean")).toBeGreaterThan(0);
    expect(score("mean + biases")).toBeGreaterThan(0);
    for (const name of ["als", "keras", "global mean", "mean + biases"]) expect(html).toContain(`>${name}<`);
  });

  it("a fully cached run writes its own report; --no-report writes none", async () => {
    const warm = await runJson([...SMALL, "-P", "keras_epochs=2", "-P", "keras_features=factors"], box);
    expect(warm.report).toBeDefined();
    expect(warm.report).not.toBe(doc.report);
    expect(await readFile(warm.report!, "utf8")).toContain(warm.runId);
    const r = await ms(["run", ...SMALL, "-P", "keras_epochs=2", "-P", "keras_features=factors", "--no-report"], box);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain("report ");
    const tracker = createTracker(box.mlruns, { env: {} });
    const last = (await tracker.searchRuns({ experimentIds: ["0"], tags: { "mlflow.project.entryPoint": "main" } })).runs[0];
    expect((await tracker.listArtifacts(last.info.runId)).map((a) => a.path)).not.toContain("report.html");
  });
});
