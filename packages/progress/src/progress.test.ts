/**
 * LiveProgress on a terminal of known size: steps' info records become their status line (with an
 * ETA once an iteration count is known), warnings go above the lines, and the final lines stay.
 * The bin's behaviour on a real pseudo-terminal is tested by @ms/driver's progress test.
 */
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { LiveProgress, type Terminal } from "./index.js";

function terminal(): Terminal & { text(): string } {
  const chunks: string[] = [];
  return {
    columns: 100,
    rows: 24,
    write(chunk: string | Uint8Array) {
      chunks.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      return true;
    },
    text: () => stripVTControlCharacters(chunks.join("")),
  };
}

describe("LiveProgress", () => {
  it("draws a step's iterations with an ETA, warnings above, and the finished line", async () => {
    const tty = terminal();
    const live = new LiveProgress(tty, "info");
    live.stepStarted("als");
    live.logger.info({ step: "als", iteration: 1, of: 4, train_loss: 0.5 }, "als: iteration 1/4");
    await new Promise((resolve) => setTimeout(resolve, 20));
    live.logger.info({ step: "als", iteration: 2, of: 4, train_loss: 0.25 }, "als: iteration 2/4");
    live.logger.warn({ step: "als" }, "als: something to know");
    live.stepFinished("als", false, 1.5, "test_rmse=0.9");
    live.stop();
    const text = tty.text();
    expect(text).toMatch(/als\s+[\d.]+ s, ETA [\d.]+ s\s+iteration 2\/4\s+train_loss=0\.25/);
    expect(text).toContain("WARN  als: something to know");
    expect(text).toMatch(/✔ als\s+computed\s+1\.50 s {2}test_rmse=0\.9/);
  });

  it("draws fm's fits as fit i/N with the ETA the step estimated from its measured fits", () => {
    const tty = terminal();
    const live = new LiveProgress(tty, "info");
    live.stepStarted("fm");
    live.logger.info({ step: "fm", fit: 0, of: 4 }, "fm: 4 fits (3 folds, then the whole training part)");
    live.logger.info({ step: "fm", fit: 1, of: 4, seconds: 2, samples: 40, etaSeconds: 75 }, "fm: fit 1/4 (fold 1)");
    live.stop();
    const text = tty.text();
    // The step's own estimate (75 s), not elapsed / done * left (a few ms here).
    expect(text).toMatch(/fm\s+[\d.]+ s, ETA 1 min 1\d s\s+fit 1\/4\s+seconds=2\s+samples=40/);
    expect(text).not.toContain("etaSeconds");
  });

  it("ignores records of steps it does not draw, and non-JSON lines", () => {
    const tty = terminal();
    const live = new LiveProgress(tty, "info");
    live.stepStarted("etl");
    live.logger.info({ step: "other" }, "other: busy");
    live.stepFailed("etl", "bad input");
    live.stop();
    expect(tty.text()).not.toContain("other");
    expect(tty.text()).toContain("✖ etl");
  });
});
