/**
 * The report without a run: charts drawn in the chart worker are exactly those drawn on this
 * thread, a worker that is gone leaves them to this thread, and the page is self-contained (no
 * script, nothing fetched) with one inline SVG per chart, the step table and the parameters; the
 * ranking table right after the test RMSE chart, and the sample users' lists beside their
 * favourites, titles escaped.
 * (report.html of a real `ms run` is tested by @ms/driver; the browser test is report.slow.test.ts.)
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { charts } from "./charts.js";
import { renderReport } from "./html.js";
import { ChartWorker, FiguresSchema, renderFigures } from "./worker.js";
import { CHART_IDS, HISTORIES, RANKING, SUMMARY, TEST_FIGURES } from "./__tests__/fixture.js";

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

describe("renderReport with the ranking step's summary", () => {
  const base = { report: SUMMARY, params: {}, trackingUri: "/tmp/mlruns", createdAt: new Date(0) };

  it("puts the ranking table right after the test RMSE chart, every model a row, each column's best in bold", async () => {
    const figures = await renderFigures(charts(HISTORIES, TEST_FIGURES));
    const html = renderReport({ ...base, figures, ranking: RANKING });
    const order = [...html.matchAll(/<figure id="([\w-]+)"/g)].map((m) => m[1]);
    expect(order).toEqual(["keras-loss", "als-loss", "test-rmse", "ranking-metrics", "errors-als", "errors-keras"]);
    const table = html.slice(
      html.indexOf('<figure id="ranking-metrics"'),
      html.indexOf("</figure>", html.indexOf('<figure id="ranking-metrics"')),
    );
    expect(table).toContain("(metrics at k = 10)");
    expect(table).toContain("<th>nDCG</th>");
    expect(table).toContain("<th>pop. bias</th>");
    expect([...table.matchAll(/<tr><td>([^<]+)/g)].map((m) => m[1].trim())).toEqual(["als", "keras", "ranker", "popularity"]);
    // The ranker leads nDCG; ALS leads coverage; the lowest popularity bias is not "best".
    expect(table).toMatch(/ranker <span class="muted">\(default\)<\/span><\/td><td class="num"><b>0\.3120<\/b>/);
    expect(table).toMatch(/<td>als<\/td>(?:<td class="num">[^<]*<\/td>){5}<td class="num"><b>0\.3100<\/b>/);
    expect(table).not.toMatch(/<b>3\.2<\/b>/);
    expect(table).toContain("120 users, 900 candidate movies");
    expect(table).toContain("relevant: every test rating");
    expect(table).toContain("fm_model=none");
  });

  it("shows each sample user's list beside their highest-rated movies, titles escaped, test hits marked", () => {
    const html = renderReport({ ...base, figures: [], ranking: RANKING });
    const sample = html.slice(html.indexOf('<div class="sample" id="sample-7">'));
    expect(sample).toContain('User 7 <span class="muted">(23 training ratings)</span>');
    expect(sample).toContain("<td>1</td><td>Usual Suspects, The (1995) <span");
    expect(sample).toContain("Tom &amp; Jerry &lt;Movie&gt;");
    expect(sample).not.toContain("<Movie>");
    expect(sample).toContain("<td>movie 52</td>");
    expect((sample.match(/✓<\/span>/g) ?? []).length).toBe(1);
    expect(sample).toContain('<td>Toy Story (1995)</td><td class="num">5.0</td>');
    // With no test RMSE chart the table leads the grid.
    expect(html).toMatch(/<div class="grid">\n<div class="beside"><figure id="ranking-metrics"/);
  });

  it("with a rating threshold says so, and without the ranking step has neither part", async () => {
    expect(renderReport({ ...base, figures: [], ranking: { ...RANKING, minRating: 4 } })).toContain("relevant: test ratings of at least 4");
    const html = renderReport({ ...base, figures: await renderFigures(charts(HISTORIES, TEST_FIGURES)) });
    expect(html).not.toContain("ranking-metrics");
    expect(html).not.toContain('class="sample"');
  });
});
