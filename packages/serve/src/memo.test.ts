/**
 * Memo files and JSON read back: a memo that fits its schema is returned; one that is absent,
 * not valid JSON or edited is recomputed (undefined), and an edited one is logged naming the field.
 * `parseJsonText` turns the same misfits into a CorruptArtifactError naming the file and field.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { CorruptArtifactError, createLogger } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EvaluationSchema, type Evaluation } from "./evaluate.js";
import { parseJsonText } from "@ms/contracts";
import { readMemo, writeMemo } from "./memo.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ms-serve-memo-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const EVALUATION: Evaluation = {
  testRows: 2,
  scores: [{ model: "als", rmse: 0.9, rows: 2 }],
  histograms: [{ model: "als", bins: [{ from: 0, to: 0.25, count: 2 }] }],
};

describe("memo files", () => {
  it("a written memo reads back; an absent one is undefined", async () => {
    await writeMemo(dir, "report-a.json", EVALUATION);
    expect(await readMemo(dir, "report-a.json", EvaluationSchema)).toEqual(EVALUATION);
    expect(await readMemo(dir, "report-none.json", EvaluationSchema)).toBeUndefined();
  });

  it("an edited memo is recomputed, and the log names the file and the field", async () => {
    const file = path.join(dir, "report-b.json");
    await writeFile(file, JSON.stringify({ ...EVALUATION, scores: [{ model: "als", rmse: "0.9", rows: 2 }] }));
    const logs = new PassThrough();
    let text = "";
    logs.on("data", (d: Buffer) => (text += d.toString()));
    expect(await readMemo(dir, "report-b.json", EvaluationSchema, createLogger({ destination: logs, level: "warn" }))).toBeUndefined();
    expect(text).toContain(`${file}: scores[0].rmse:`);
    await writeFile(file, "{");
    expect(await readMemo(dir, "report-b.json", EvaluationSchema)).toBeUndefined();
  });

  it("a memo that cannot be written is skipped", async () => {
    await writeMemo(path.join(dir, "absent-dir"), "x.json", EVALUATION);
    await expect(readFile(path.join(dir, "absent-dir", "x.json"))).rejects.toThrow();
  });
});

describe("parseJsonText", () => {
  it("names the file and the field of a misfit", () => {
    expect(() => parseJsonText('{"testRows": 1, "scores": [], "histograms": [{"model": 3}]}', EvaluationSchema, "/m.json")).toThrow(
      CorruptArtifactError,
    );
    expect(() => parseJsonText('{"testRows": 1, "scores": [], "histograms": [{"model": 3}]}', EvaluationSchema, "/m.json")).toThrow(
      /^\/m\.json: histograms\[0\]\.model:/,
    );
    expect(() => parseJsonText("1", EvaluationSchema, "/m.json")).toThrow(/^\/m\.json: Invalid type: Expected Object but received 1$/);
    // valibot checks an array against an object schema key by key (zod refused it as a whole).
    expect(() => parseJsonText("[1]", EvaluationSchema, "/m.json")).toThrow(
      /^\/m\.json: testRows: Invalid key: Expected "testRows" but received undefined \(and 2 more problems\)$/,
    );
    expect(() => parseJsonText("nope", EvaluationSchema, "/m.json")).toThrow(/^\/m\.json: not valid JSON/);
  });
});
