/**
 * meta.yaml reading and writing, including what PyYAML emits for awkward strings (the samples
 * below are PyYAML 6 `safe_dump` output, as MLflow writes it).
 */
import { describe, expect, it } from "vitest";
import { formatMeta, parseMeta } from "./meta-yaml.js";

describe("meta.yaml", () => {
  it("round-trips awkward strings, numbers and nulls", () => {
    const meta = {
      a: "it's: here",
      b: "123",
      c: "true",
      d: "é ü",
      e: "line\nbreak",
      f: " lead",
      g: "#hash",
      h: 'say "hi"',
      i: "",
      n: 1795674723850,
      z: null,
      tags: [] as [],
      name: "word ".repeat(30),
    };
    expect(parseMeta(formatMeta(meta))).toEqual(meta);
    expect(formatMeta({ experiment_id: "0", name: "Default" })).toBe("experiment_id: '0'\nname: Default\n");
  });

  it("reads PyYAML's folded and escaped scalars", () => {
    const py = [
      "a: 'its: x'",
      "b: '123'",
      'd: "\\xE9 \\xFC"',
      "e: 'x",
      "",
      "  y'",
      "name: 'word word word word word word word word word word word word word word word",
      "  word word '",
      "experiment_id: '689022914949635005'",
      "end_time: null",
      "status: 3",
      "tags: []",
      "",
    ].join("\n");
    expect(parseMeta(py)).toEqual({
      a: "its: x",
      b: "123",
      d: "é ü",
      e: "x\ny",
      name: `${"word ".repeat(15).trim()} word word `,
      experiment_id: "689022914949635005",
      end_time: null,
      status: 3,
      tags: [],
    });
  });

  it("names the line it cannot read", () => {
    expect(() => parseMeta("a: 1\n- item\n", "x/meta.yaml")).toThrow(/x\/meta.yaml:2/);
    expect(() => parseMeta("a: 'open\n", "m.yaml")).toThrow(/m.yaml:1: unterminated/);
  });
});
