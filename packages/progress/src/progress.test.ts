/**
 * LiveProgress on a terminal of known size: steps' info records become their status line (with an
 * ETA once an iteration count is known), warnings go above the lines, and the final lines stay.
 * The bin's behaviour on a real pseudo-terminal is tested by @ms/driver's progress test.
 */
import { stripVTControlCharacters } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
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

/** The ETA on the latest drawing of a step's line, or "none". */
function lastEta(tty: { text(): string }, step: string): string {
  const lines = tty
    .text()
    .split("\n")
    .filter((l) => l.includes(` ${step} `));
  return lines.at(-1)?.match(/ETA ([\d.]+ s)/)?.[1] ?? "none";
}

afterEach(() => {
  vi.useRealTimers();
});

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

  it("takes the rate between counts for the ETA, not the time since the step started", () => {
    vi.useFakeTimers({ now: 0 });
    const tty = terminal();
    const live = new LiveProgress(tty, "info");
    live.stepStarted("als");
    // Five seconds of loading before the first iteration, then 0.6 s per iteration.
    vi.advanceTimersByTime(5_000);
    live.logger.info({ step: "als", iteration: 1, of: 11, loss: 0.5 }, "als: iteration");
    expect(lastEta(tty, "als")).toBe("none");
    vi.advanceTimersByTime(600);
    live.logger.info({ step: "als", iteration: 2, of: 11, loss: 0.4 }, "als: iteration");
    // 9 iterations left at 0.6 s; from the step's start it would be 5.6 s / 2 * 9 = 25.2 s.
    expect(lastEta(tty, "als")).toBe("5.4 s");
    vi.advanceTimersByTime(1_000);
    expect(lastEta(tty, "als")).toBe("4.4 s");
    vi.advanceTimersByTime(600);
    live.logger.info({ step: "als", iteration: 4, of: 11 }, "als: iteration");
    // 2.2 s for the 3 iterations since the first, 7 left.
    expect(lastEta(tty, "als")).toBe("5.1 s");
    // Another count (keras' epochs after its feature fits) starts its own rate.
    live.stepStarted("keras");
    live.logger.info({ step: "keras", iteration: 3, of: 3 }, "keras: fit");
    vi.advanceTimersByTime(9_000);
    live.logger.info({ step: "keras", epoch: 1, of: 5 }, "keras: epoch 1/5");
    vi.advanceTimersByTime(2_000);
    live.logger.info({ step: "keras", epoch: 2, of: 5 }, "keras: epoch 2/5");
    expect(lastEta(tty, "keras")).toBe("6.0 s");
    // Batches of the epoch in progress count as fractions of an epoch: 2.5 epochs done.
    vi.advanceTimersByTime(1_000);
    live.logger.info({ step: "keras", epoch: 3, of: 5, batch: 5, batches: 10 }, "keras: epoch 3/5, batch 5/10");
    expect(lastEta(tty, "keras")).toBe("5.0 s");
    expect(tty.text()).toMatch(/epoch 3\/5 {2}batch=5 {2}batches=10/);
    live.stop();
  });

  it("draws fm's fits as fit i/N with the ETA the step estimated from its measured fits", () => {
    vi.useFakeTimers({ now: 0 });
    const tty = terminal();
    const live = new LiveProgress(tty, "info");
    live.stepStarted("fm");
    live.logger.info({ step: "fm", fit: 0, of: 4 }, "fm: 4 fits (3 folds, then the whole training part)");
    vi.advanceTimersByTime(2_000);
    live.logger.info({ step: "fm", fit: 1, of: 4, seconds: 2, samples: 40, etaSeconds: 45 }, "fm: fit 1/4 (fold 1)");
    // The step's own estimate (45 s), not the rate of the counts (2 s a fit, 6 s).
    expect(lastEta(tty, "fm")).toBe("45.0 s");
    vi.advanceTimersByTime(5_000);
    expect(lastEta(tty, "fm")).toBe("40.0 s");
    expect(tty.text()).toMatch(/fit 1\/4 {2}seconds=2 {2}samples=40/);
    expect(tty.text()).not.toContain("etaSeconds");
    live.stop();
  });

  it("shows a step's own short status, never its log messages", () => {
    const tty = terminal();
    const live = new LiveProgress(tty, "info");
    live.stepStarted("etl");
    live.logger.info({ step: "etl", source: "/data/ratings.csv", format: "csv" }, "etl: converting ratings to Parquet with a long message");
    live.logger.info({ step: "etl", status: "42% read" }, "etl: 42% read, about 420,000 rows");
    live.stop();
    expect(tty.text()).toMatch(/etl\s+[\d.]+ s\s+42% read/);
    expect(tty.text()).not.toContain("converting");
    expect(tty.text()).not.toContain("about 420,000");
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
