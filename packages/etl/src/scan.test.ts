/**
 * The byte-level scan against a plain reference (split the text into lines, look at each) on
 * seeded random files, with tiny chunks and line limits so that lines straddle chunk boundaries,
 * start or end exactly on them, and the row limit cuts inside a chunk.
 */
import { existsSync } from "node:fs";
import { appendFile, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { FormatInfo } from "./formats.js";
import { scanRatingsText, scanRatingsTextRemembered } from "./scan.js";
import { tempDir, writeText } from "./__tests__/helpers.js";

const CSV: FormatInfo = { format: "csv", delimiter: ",", header: true };

type Kind = "long" | "underscore" | "id" | "ending";

/**
 * What the scan must report: the first line (1-based, within the limit) that is too long, holds
 * `_`, has an id field (after the header) with a byte other than digits, '-', ' ' and CR, or ends
 * in CR LF while line 1 ends in LF alone.
 */
function reference(text: string, maxLine: number, maxLines: number): { line: number; kind: Kind } | undefined {
  const lines = text.split("\n");
  const last = text.endsWith("\n") ? lines.length - 1 : lines.length;
  for (let i = 0; i < last && (maxLines < 0 || i < maxLines); i++) {
    if (lines[i].includes("_")) return { line: i + 1, kind: "underscore" };
    if (i > 0 && /[^0-9 \r-]/.test(lines[i].split(",").slice(0, 2).join(""))) return { line: i + 1, kind: "id" };
    if (lines[i].length > maxLine) return { line: i + 1, kind: "long" };
    if (i < lines.length - 1 && lines[i].endsWith("\r")) return { line: i + 1, kind: "ending" };
  }
  return undefined;
}

const MESSAGES: Record<Kind, RegExp> = {
  long: /longer than 12 bytes/,
  underscore: /'_' digit separators/,
  id: /userId value "7\.0" is not an id/,
  ending: /mixed line endings/,
};

function mulberry(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("scanRatingsText", () => {
  it("agrees with a line-by-line reference on random files, chunk sizes and row limits", async () => {
    const dir = await tempDir();
    const rand = mulberry(42);
    const maxLine = 12;
    let checked = 0;
    const seen = new Set<Kind>();
    for (let round = 0; round < 400; round++) {
      const lines: string[] = ["userId,movieId,rating,timestamp".slice(0, maxLine)];
      const n = 1 + Math.floor(rand() * 30);
      for (let i = 0; i < n; i++) {
        const r = rand();
        // Mostly fine lines, some exactly at the limit, some just over, a few far over or with '_'.
        const len =
          r < 0.8
            ? Math.floor(rand() * (maxLine + 1))
            : r < 0.9
              ? maxLine + 1 + Math.floor(rand() * 3)
              : r < 0.95
                ? 40 + Math.floor(rand() * 60)
                : 3;
        let line = "9".repeat(len);
        if (r >= 0.95) line = r < 0.97 ? "1_0" : r < 0.985 ? "7.0,1" : "12\r";
        lines.push(line);
      }
      const text = lines.join("\n") + (rand() < 0.7 ? "\n" : "");
      const file = await writeText(dir, `f${round}.csv`, text);
      const chunkBytes = 1 + Math.floor(rand() * 40);
      const maxRows = rand() < 0.5 ? -1 : Math.floor(rand() * (n + 2));
      const expected = reference(text, maxLine, maxRows < 0 ? -1 : maxRows + 1);
      const found = await scanRatingsText(file, { info: CSV, maxRows, maxLineBytes: maxLine, chunkBytes });
      const context = JSON.stringify({ round, chunkBytes, maxRows, text });
      if (!expected) {
        expect(found, context).toBeUndefined();
      } else {
        expect(found?.line, context).toBe(expected.line);
        expect(found?.message, context).toMatch(MESSAGES[expected.kind]);
        checked++;
        seen.add(expected.kind);
      }
    }
    // The generator must actually produce every outcome, or the comparison proves little.
    expect(checked).toBeGreaterThan(50);
    expect(seen).toEqual(new Set(Object.keys(MESSAGES)));
  });

  it("names the field that holds '_' and reads a whole file in large chunks", async () => {
    const dir = await tempDir();
    const rows = Array.from({ length: 200_000 }, (_, i) => `${i + 1},${i + 2},3.5,${1_000_000 + i}`);
    rows[150_000] = "5,6,0_5,7";
    const file = await writeText(dir, "r.csv", ["userId,movieId,rating,timestamp", ...rows].join("\n") + "\n");
    const found = await scanRatingsText(file, { info: CSV, maxRows: -1 });
    expect(found?.message).toBe(`${file}:150002: rating value "0_5" is not a plain number ('_' digit separators are not allowed)`);
    expect(await scanRatingsText(file, { info: CSV, maxRows: 150_000 })).toBeUndefined();
    expect((await scanRatingsText(file, { info: CSV, maxRows: 150_001 }))?.line).toBe(150_002);
    const dat = await writeText(dir, "r.dat", "1::2::3::4\n1::2_0::3::4\n");
    expect((await scanRatingsText(dat, { info: { format: "dat", delimiter: "::", header: false }, maxRows: -1 }))?.message).toMatch(
      /r\.dat:2: movieId value "2_0"/,
    );
    expect(path.basename(file)).toBe("r.csv");
  });

  it("remembers a clean whole-file scan by file identity, and scans again when the file changes", async () => {
    const dir = await tempDir();
    const cache = await tempDir();
    const file = await writeText(dir, "r.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n5,6,7,8\n");
    const records = path.join(cache, "etl-scans");
    // Stopped at the row limit: proves nothing about the rest, so nothing is recorded.
    expect(await scanRatingsTextRemembered(file, { info: CSV, maxRows: 1 }, cache)).toBeUndefined();
    expect(existsSync(records)).toBe(false);
    expect(await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache)).toBeUndefined();
    expect(await readdir(records)).toHaveLength(1);
    // Edited in place (ctime changes even if size and mtime were restored): scanned again, and caught.
    await appendFile(file, "1_0,2,3,4\n");
    expect((await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache))?.message).toMatch(/r\.csv:4: userId value "1_0"/);
    // A record is only a shortcut: a replaced file with a new identity is read again.
    await writeFile(file, "userId,movieId,rating,timestamp\n1,2,3,4\n9_9,1,1,1\n");
    expect((await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache))?.line).toBe(3);
    // And a record matching the file's identity is trusted without reading it (the point of it).
    const [record] = await readdir(records);
    const st = await stat(file, { bigint: true });
    const identity = [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(":");
    await writeFile(path.join(records, record), JSON.stringify({ path: file, identity, maxLineBytes: 65536, idFields: [0, 1] }));
    expect(await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache)).toBeUndefined();
    expect((await scanRatingsText(file, { info: CSV, maxRows: -1 }))?.line).toBe(3);
    // A record from before the id and line-ending checks proves nothing about them: read again.
    await writeFile(path.join(records, record), JSON.stringify({ path: file, identity, maxLineBytes: 65536 }));
    expect((await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache))?.line).toBe(3);
    await writeFile(path.join(records, record), JSON.stringify({ path: file, identity, maxLineBytes: 65536, idFields: [0, 1] }));
    // A record with an edited field, or cut short, is no record: the file is read again.
    await writeFile(path.join(records, record), JSON.stringify({ path: file, identity, maxLineBytes: "65536", idFields: [0, 1] }));
    expect((await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache))?.line).toBe(3);
    await writeFile(
      path.join(records, record),
      JSON.stringify({ path: file, identity, maxLineBytes: 65536, idFields: [0, 1] }).slice(0, 30),
    );
    expect((await scanRatingsTextRemembered(file, { info: CSV, maxRows: -1 }, cache))?.line).toBe(3);
  });
});
