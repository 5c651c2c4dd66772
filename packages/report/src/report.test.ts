/**
 * The report without a run: charts drawn in the chart worker are exactly those drawn on this
 * thread, a worker that is gone leaves them to this thread, and the page is self-contained (no
 * script, nothing fetched) with one inline SVG per chart, the step table and the parameters.
 * (report.html of a real `ms run` is tested by @ms/driver; the browser test is report.slow.test.ts.)
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { charts } from "./charts.js";
import { renderReport } from "./html.js";
import { ChartWorker, FiguresSchema, renderFigures } from "./worker.js";
import { CHART_IDS, HISTORIES, SUMMARY, TEST_FIGURES } from "./__tests__/fixture.js";

describe("the chart worker", () => {
  const list = charts(HISTORIES.slice(0, 1), {
    ...TEST_FIGURES,
    scores: TEST_FIGURES.scores.slice(2, 3),
    histograms: TEST_FIGURES.histograms.slice(0, 1),
  });

  it("draws exactly the SVGs this thread draws", async () => {
    const worker = ChartWorker.start();
    expect(worker, "dist/chart-worker.js is built").toBeDefined();
    try {
      const inWorker = await renderFigures(list, worker);
      const here = await renderFigures(list);
      expect(inWorker.map((f) => f.id)).toEqual(["keras-loss", "test-rmse", "errors-als"]);
      expect(inWorker).toEqual(here);
      expect(here[0].svg).toMatch(/^<svg[\s\S]*<\/svg>$/);
    } finally {
      await worker?.close();
    }
  });

  it("a worker that is gone leaves the charts to this thread", async () => {
    const worker = ChartWorker.start()!;
    await worker.close();
    await expect(worker.render([list[0].spec])).rejects.toThrow(/closed/);
    expect((await renderFigures(list, worker)).map((f) => f.id)).toEqual(["keras-loss", "test-rmse", "errors-als"]);
  });
});

describe("renderReport", () => {
  it("is one self-contained page with every chart as inline SVG", async () => {
    const figures = await renderFigures(charts(HISTORIES, TEST_FIGURES));
    expect(v.parse(FiguresSchema, JSON.parse(JSON.stringify(figures)))).toEqual(figures);
    const html = renderReport({
      report: SUMMARY,
      figures,
      params: { als_rank: 4, keras_lr: 0.0012345678 },
      trackingUri: "/tmp/mlruns",
      createdAt: new Date(0),
    });
    for (const id of CHART_IDS) {
      expect(html, id).toMatch(new RegExp(`<figure id="${id}" class="chart"><figcaption>[^<]+</figcaption>\\s*<svg[^>]*>[\\s\\S]*?</svg>`));
    }
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//i);
    expect(html).toContain("<title>ms run 0123456789abcdef</title>");
    expect(html).toContain("<td>als</td><td>computed</td><td>1.25</td>");
    expect(html).toContain("test_rmse=0.88");
    expect(html).not.toContain("text is left out");
    expect(html).toContain("<code>keras_lr</code> = 0.001235");
    for (const name of ["als", "keras", "global mean", "mean + biases"]) expect(html).toContain(`>${name}<`);
  });

  it("leaves out the charts it has no data for", () => {
    expect(charts([], undefined)).toEqual([]);
    expect(charts(HISTORIES, undefined).map((c) => c.id)).toEqual(["keras-loss", "als-loss"]);
  });

  it("a figures memo that is not a list of figures does not validate", () => {
    expect(v.safeParse(FiguresSchema, [{ id: "x", title: "t" }]).success).toBe(false);
  });
});
