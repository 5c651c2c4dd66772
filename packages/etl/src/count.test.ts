/**
 * What max_row_limit leaves out is counted and said: the rows in the source beside the rows read,
 * a warning naming the limit and how to keep all, and the etl step's summary line.
 */
import path from "node:path";
import { MemoryMetrics, createLogger } from "@ms/contracts";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { countDataRows } from "./count.js";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { etlStep } from "./step.js";
import { SMALL_CSV, tempDir, writeText } from "./__tests__/helpers.js";

describe("countDataRows", () => {
  it("counts lines with or without a final newline, less the header", async () => {
    const dir = await tempDir();
    expect(await countDataRows(await writeText(dir, "a.csv", "h\n1\n2\n"), true)).toBe(2);
    expect(await countDataRows(await writeText(dir, "b.csv", "h\n1\n2"), true)).toBe(2);
    expect(await countDataRows(await writeText(dir, "c.dat", "1::2\n3::4\n"), false)).toBe(2);
    expect(await countDataRows(await writeText(dir, "d.csv", ""), true)).toBe(0);
  });
});

describe("a max_row_limit that cuts the file", () => {
  it("reports the rows in the source, warns naming the limit, and the summary says the first N of M", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", SMALL_CSV);
    const all = SMALL_CSV.trim().split("\n").length - 1;
    const lines: string[] = [];
    const logger = createLogger({
      level: "info",
      name: "t",
      pretty: false,
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    const metrics = new MemoryMetrics();
    const cut = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: 2 }), path.join(dir, "cut"), { logger, metrics });
    expect(cut.metrics).toMatchObject({ rows_read: 2, rows_in_source: all });
    expect(lines.join("")).toContain(`kept the first 2 of ${all} ratings (max_row_limit); -P max_row_limit=-1 keeps all`);
    expect(etlStep.headline(cut.metrics, {})).toContain(`the first 2 of ${all} ratings`);

    const whole = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), path.join(dir, "whole"));
    expect(whole.metrics.rows_in_source).toBe(whole.metrics.rows_read);
    expect(etlStep.headline(whole.metrics, {})).not.toContain("max_row_limit");
  });
});
