/**
 * The run report in a real browser: Debian's chromium (tools/ensure-chromium.sh), headless and
 * offline, opens from disk a report.html drawn from the fixture's histories and test figures. It loads with no console
 * error and no request beyond the file itself, and every chart is drawn (an SVG with marks and a
 * visible size); with the ranking step's summary, its table stands beside the test RMSE chart and
 * each sample user's list beside their favourites.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { charts } from "./charts.js";
import { renderReport } from "./html.js";
import { ChartWorker, renderFigures } from "./worker.js";
import { ensureChromium, openBrowser, type Browser } from "./__tests__/browser.js";
import { CHART_IDS, HISTORIES, RANKING, SUMMARY, TEST_FIGURES } from "./__tests__/fixture.js";

let dir: string;
let file: string;
let rankingFile: string;
let browser: Browser;

beforeAll(async () => {
  const executable = await ensureChromium();
  dir = await mkdtemp(path.join(os.tmpdir(), "ms-report-browser-"));
  file = path.join(dir, "report.html");
  const worker = ChartWorker.start();
  try {
    const figures = await renderFigures(charts(HISTORIES, TEST_FIGURES), worker);
    await writeFile(file, renderReport({ report: SUMMARY, figures, params: { als_rank: 4 }, trackingUri: "/tmp/mlruns" }));
    rankingFile = path.join(dir, "ranking.html");
    await writeFile(rankingFile, renderReport({ report: SUMMARY, figures, params: {}, trackingUri: "/tmp/mlruns", ranking: RANKING }));
  } finally {
    await worker?.close();
  }
  browser = await openBrowser(executable);
}, 20 * 60_000);
afterAll(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("report.html in headless chromium", () => {
  it("loads offline with no console error and shows every chart", async () => {
    const page = await browser.context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    await page.route("**/*", (route) => {
      requests.push(route.request().url());
      return route.request().url().startsWith("file:") ? route.continue() : route.abort();
    });
    const url = pathToFileURL(file).href;
    await page.goto(url, { waitUntil: "load", timeout: 30_000 });
    expect(await page.title()).toBe(`ms run ${SUMMARY.runId}`);
    const drawn = await page.$$eval("figure.chart", (figures) =>
      figures.map((f) => {
        const svg = f.querySelector("svg");
        const box = svg?.getBoundingClientRect();
        return {
          id: f.id,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: svg?.querySelectorAll("g.mark-rect path, g.mark-line path, g.mark-symbol path").length ?? 0,
        };
      }),
    );
    expect(drawn.map((c) => c.id)).toEqual(CHART_IDS);
    for (const c of drawn) {
      expect(c.width, c.id).toBeGreaterThan(200);
      expect(c.height, c.id).toBeGreaterThan(50);
      expect(c.marks, c.id).toBeGreaterThan(0);
    }
    const png = await page.screenshot({ fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(problems).toEqual([]);
    expect(requests).toEqual([url]);
    await page.close();
  });

  it("shows the ranking table beside the test RMSE chart, and each sample list beside the user's favourites", async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    await page.goto(pathToFileURL(rankingFile).href, { waitUntil: "load", timeout: 30_000 });
    const box = async (selector: string) => {
      const b = await page.locator(selector).first().boundingBox();
      if (!b) throw new Error(`${selector} is not shown`);
      return b;
    };
    const rmse = await box("#test-rmse");
    const table = await box("#ranking-metrics table");
    // Side by side: the table starts right of the chart, and the two share a row.
    expect(table.x).toBeGreaterThanOrEqual(rmse.x + rmse.width);
    expect(table.y).toBeLessThan(rmse.y + rmse.height);
    expect(await page.locator("#ranking-metrics tbody tr").count()).toBe(RANKING.models.length);
    const lists = page.locator("#sample-7 table");
    expect(await lists.count()).toBe(2);
    const [recs, favs] = [await lists.nth(0).boundingBox(), await lists.nth(1).boundingBox()];
    expect(favs!.x).toBeGreaterThan(recs!.x + recs!.width - 1);
    expect(Math.abs(favs!.y - recs!.y)).toBeLessThan(2);
    expect(await lists.nth(0).textContent()).toContain("Tom & Jerry <Movie>");
    expect(problems).toEqual([]);
    await page.close();
  });
});
