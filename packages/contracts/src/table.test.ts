/**
 * `formatTable` at the sizes a batch command prints (712,047 predicted pairs): widths computed
 * without spreading a column into Math.max's arguments, and the exit code of a batch that answered
 * some of its rows (`PartialFailureError`, exit 9).
 */
import { describe, expect, it } from "vitest";
import { EXIT_CODES, exitCodeFor, formatTable, PartialFailureError } from "./index.js";

describe("formatTable", () => {
  it("pads each column to its widest cell, under a header and a rule", () => {
    const text = formatTable(
      [
        ["1", "toy story"],
        ["1234", "x"],
      ],
      ["id", "title"],
    );
    expect(text.split("\n")).toEqual(["id    title", "----  ---------", "1     toy story", "1234  x"]);
  });

  it("formats 712,047 rows (a stack overflow when the widths were Math.max(...column))", () => {
    const rows = Array.from({ length: 712_047 }, (_, i) => [String(i + 1), String((i * 7919) % 193_609), "3.500"]);
    const text = formatTable(rows, ["user", "movie", "rating"]);
    const lines = text.split("\n");
    expect(lines).toHaveLength(712_049);
    expect(lines[0]).toBe("user    movie   rating");
    expect(lines.at(-1)).toBe(`712047  ${(712_046 * 7919) % 193_609}`.padEnd(16) + "3.500");
  });
});

describe("PartialFailureError", () => {
  it("is exit 9 (PARTIAL) and carries its counts", () => {
    const error = new PartialFailureError("2 of 5 users failed", { failed: 2, total: 5 });
    expect(exitCodeFor(error)).toBe(9);
    expect(EXIT_CODES.PARTIAL).toBe(9);
    expect(error.failed).toBe(2);
    expect(error.total).toBe(5);
  });
});
