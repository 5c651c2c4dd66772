/**
 * The run report in a real browser: Debian's chromium (tools/ensure-chromium.sh), headless and
 * offline, opens the report.html of a small synthetic `ms run` from disk. It loads with no console
 * error and no request beyond the file itself, and every chart is drawn (an SVG with marks and a
 * visible size).
 */
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";
import { ensureChromium, openBrowser, type Browser } from "./__tests__/browser.js";

let box: Sandbox;
let doc: RunDoc;
let browser: Browser;

beforeAll(async () => {
  const executable = await ensureChromium();
  box = await sandbox("ms-driver-report-browser-");
  doc = await runJson([...SMALL, "-P", "keras_epochs=2", "-P", "keras_features=factors"], box);
  browser = await openBrowser(executable);
}, 20 * 60_000);
afterAll(async () => {
  await browser?.close();
  await box?.dispose();
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
    const url = pathToFileURL(doc.report!).href;
    await page.goto(url, { waitUntil: "load", timeout: 30_000 });
    expect(await page.title()).toBe(`ms run ${doc.runId}`);
    const charts = await page.$$eval("figure.chart", (figures) =>
      figures.map((f) => {
        const svg = f.querySelector("svg");
        const box = svg?.getBoundingClientRect();
        return { id: f.id, width: box?.width ?? 0, height: box?.height ?? 0, marks: svg?.querySelectorAll("g.mark-rect path, g.mark-line path, g.mark-symbol path").length ?? 0 };
      }),
    );
    expect(charts.map((c) => c.id)).toEqual(["keras-loss", "als-loss", "test-rmse", "errors-als", "errors-keras"]);
    for (const c of charts) {
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
});
