/**
 * Over-long lines at the sizes where DuckDB's CSV reader misbehaves, through the built bin: a last
 * line of 32 MiB or more after valid rows (DuckDB dropped it and exited 0), the same line in the
 * middle (DuckDB's "Parallel CSV Reader ... not implemented", exit 1), and a 100 MB first line
 * (reported as "header only"). Each must be exit code 3 naming the line.
 */
import { execFile } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import path from "node:path";
import { once } from "node:events";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "@ms/contracts";
import { tempDir } from "./__tests__/helpers.js";

const run = promisify(execFile);
const bin = path.resolve(__dirname, "../dist/bin.js");
const HEADER = "userId,movieId,rating,timestamp\n";
const ROWS = Array.from({ length: 1000 }, (_, i) => `${i + 1},${i + 1},3.0,${1000 + i}\n`).join("");

/** Writes the parts in order; a number is that many '9' bytes, written in 1 MiB pieces. */
async function writeParts(file: string, parts: (string | number)[]): Promise<void> {
  const out = createWriteStream(file);
  const piece = Buffer.alloc(2 ** 20, "9");
  for (const part of parts) {
    if (typeof part === "string") {
      if (!out.write(part)) await once(out, "drain");
      continue;
    }
    for (let left = part; left > 0; left -= piece.length) {
      if (!out.write(left >= piece.length ? piece : piece.subarray(0, left))) await once(out, "drain");
    }
  }
  out.end();
  await once(out, "finish");
}

async function etlBin(csv: string, out: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(
      process.execPath,
      [bin, "--ratings-csv", csv, "--out", out, "--max-row-limit", "-1", "--log-level", "error"],
      { maxBuffer: 2 ** 20 },
    );
    return { code: 0, stderr };
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

const BIG = 33 * 2 ** 20;
const cases: [string, (string | number)[], number][] = [
  ["a last line of 33 MiB after valid rows", [HEADER, ROWS, "1,2,3.0,", BIG, "\n"], 1002],
  ["the same line without a final newline", [HEADER, ROWS, "1,2,3.0,", BIG], 1002],
  ["a 33 MiB line in the middle", [HEADER, ROWS, "1,2,3.0,", BIG, "\n", ROWS], 1002],
  ["a 100 MB first line", ["userId,movieId,rating,timestamp", 100_000_000, "\n", ROWS], 1],
];

describe("over-long lines", () => {
  it.each(cases)(
    "refuses %s with exit code 3 naming the line",
    async (_name, parts, line) => {
      const dir = await tempDir();
      const csv = path.join(dir, "ratings.csv");
      await writeParts(csv, parts);
      const out = path.join(dir, "out");
      const r = await etlBin(csv, out);
      expect(r.code).toBe(EXIT_CODES.BAD_INPUT);
      expect(r.stderr).toBe(
        `ms-etl: error: ${csv}:${line}: line is longer than 65536 bytes (a ratings line is under 100); not a ratings file?\n`,
      );
      expect(existsSync(out)).toBe(false);
    },
    120_000,
  );
});
