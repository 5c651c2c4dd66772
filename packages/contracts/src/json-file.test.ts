/**
 * `parseJsonFile` and `parseJsonText`: a good document comes back parsed, a bad one is an error
 * naming its source and the field, a missing file keeps its own error.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import * as v from "valibot";
import { CorruptArtifactError, TrackingUnavailableError } from "./errors.js";
import { formatIssuePath, parseJsonFile, parseJsonText } from "./json-file.js";

const Doc = v.object({ files: v.array(v.object({ sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)) })) });

describe("parseJsonFile", () => {
  it("returns the parsed document when it matches", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ms-json-"));
    const file = path.join(dir, "doc.json");
    await writeFile(file, JSON.stringify({ files: [{ sha256: "a".repeat(64) }] }));
    expect(await parseJsonFile(file, Doc)).toEqual({ files: [{ sha256: "a".repeat(64) }] });
  });

  it("names the file and the field of a mismatch", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ms-json-"));
    const file = path.join(dir, "doc.json");
    await writeFile(file, JSON.stringify({ files: [{ sha256: "a".repeat(64) }, { sha256: 7 }] }));
    const error = await parseJsonFile(file, Doc).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as Error).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: files\\[1\\]\\.sha256: `));
  });

  it("calls a truncated file not valid JSON", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "ms-json-"));
    const file = path.join(dir, "doc.json");
    await writeFile(file, '{"files": [');
    await expect(parseJsonFile(file, Doc)).rejects.toThrow(/doc\.json: not valid JSON/);
  });

  it("lets a missing file's own error through", async () => {
    await expect(parseJsonFile(path.join(tmpdir(), "ms-no-such-file.json"), Doc)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("parseJsonText", () => {
  it("throws the error class the caller asks for", () => {
    const error = (() => {
      try {
        return parseJsonText('{"files": 1}', Doc, "GET /api/x", { error: (m, o) => new TrackingUnavailableError(m, o) });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(TrackingUnavailableError);
    expect((error as Error).message).toMatch(/^GET \/api\/x: files: /);
  });
});

describe("formatIssuePath", () => {
  it("writes indices in brackets and odd keys quoted", () => {
    expect(formatIssuePath(["files", 2, "sha256"])).toBe("files[2].sha256");
    expect(formatIssuePath(["params", "a-b"])).toBe('params["a-b"]');
    expect(formatIssuePath([])).toBe("");
  });
});
