/**
 * The ratings file formats MovieLens has shipped, and detection from the first line. Detection
 * only reads a few kilobytes; the full validation happens in the single DuckDB pass.
 */
import { constants, type Stats } from "node:fs";
import { open, stat } from "node:fs/promises";
import { BadInputError, BadParameterError } from "@ms/contracts";

export type RatingsFormat = "csv" | "dat" | "tsv";
export const RATINGS_FORMATS: readonly RatingsFormat[] = ["csv", "dat", "tsv"];

export interface FormatInfo {
  format: RatingsFormat;
  delimiter: string;
  header: boolean;
}

/** A MovieLens ratings line is under 100 bytes; anything this long is not a ratings file. */
export const MAX_LINE_BYTES = 64 * 1024;

/** The header ml-latest*, ml-20m, ml-25m and ml-32m use. */
export const CSV_HEADER = ["userId", "movieId", "rating", "timestamp"] as const;

const DESCRIPTIONS: Record<RatingsFormat, string> = {
  csv: "CSV with header userId,movieId,rating,timestamp (ml-latest*, ml-20m, ml-25m, ml-32m)",
  dat: "'::'-separated ratings.dat without header (ml-1m, ml-10m)",
  tsv: "tab-separated u.data without header (ml-100k)",
};

export function describeFormat(format: RatingsFormat): string {
  return DESCRIPTIONS[format];
}

export function parseFormat(raw: string | undefined): RatingsFormat | undefined {
  if (raw === undefined || raw === "auto") return undefined;
  if ((RATINGS_FORMATS as readonly string[]).includes(raw)) return raw as RatingsFormat;
  throw new BadParameterError("--format", `"${raw}" is not one of auto, ${RATINGS_FORMATS.join(", ")}`);
}

/** What a path is when it is not a regular file, in words for an error message. */
function describeNonRegular(st: Stats): string {
  if (st.isDirectory()) return "is a directory, expected a ratings file";
  if (st.isFIFO()) return "is a named pipe (FIFO), expected a regular ratings file";
  if (st.isSocket()) return "is a socket, expected a regular ratings file";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "is a device, expected a regular ratings file";
  return "is not a regular file, expected a ratings file";
}

async function readFirstLine(file: string): Promise<{ line: string; size: number; complete: boolean }> {
  // A FIFO with no writer would block a plain open() forever, so look before opening, and open
  // non-blocking in case the path changes in between; fstat then has the last word.
  const before = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new BadInputError(error.code === "ENOENT" ? "no such file" : `cannot read (${error.code})`, { file }, { cause: error });
  });
  if (!before.isFile()) throw new BadInputError(describeNonRegular(before), { file });
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new BadInputError(
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory, expected a ratings file" : `cannot read (${code})`,
      { file },
      { cause: error },
    );
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new BadInputError(describeNonRegular(st), { file });
    const { size } = st;
    // One byte past the longest allowed line (and its CR LF) tells a complete line from a cut one.
    const buf = Buffer.alloc(Math.min(size, MAX_LINE_BYTES + 3));
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString("utf8");
    const end = text.indexOf("\n");
    const raw = end === -1 ? text : text.slice(0, end);
    return { line: raw.replace(/\r$/, ""), size, complete: end !== -1 || bytesRead === size };
  } finally {
    await handle.close();
  }
}

/**
 * Works out the format from the first line (or checks a forced one) and rejects what cannot be a
 * ratings file before DuckDB is started: an empty file, a wrong delimiter, a wrong header.
 */
export async function detectFormat(file: string, forced?: RatingsFormat): Promise<FormatInfo> {
  const { line, size, complete } = await readFirstLine(file);
  if (!complete || Buffer.byteLength(line) > MAX_LINE_BYTES) {
    throw new BadInputError(`line is longer than ${MAX_LINE_BYTES} bytes (a ratings line is under 100); not a ratings file?`, {
      file,
      line: 1,
    });
  }
  if (size === 0 || line.trim() === "") throw new BadInputError("empty file, expected ratings", { file, line: 1 });
  const looksLike: RatingsFormat | undefined =
    line.startsWith("userId") || line.includes(",") ? "csv" : line.includes("::") ? "dat" : line.includes("\t") ? "tsv" : undefined;
  const format = forced ?? looksLike;
  if (!format) {
    throw new BadInputError(
      `cannot tell the ratings format from the first line ${JSON.stringify(line.slice(0, 80))}: expected one of ${RATINGS_FORMATS.map(describeFormat).join("; ")}`,
      { file, line: 1 },
    );
  }
  if (format === "csv") {
    const fields = line.split(",").map((f) => f.trim());
    const expected = CSV_HEADER.join(",");
    if (fields.length === 1 && /[;|\t]/.test(line)) {
      throw new BadInputError(
        `wrong delimiter: expected ',' in header ${JSON.stringify(expected)}, found ${JSON.stringify(line.slice(0, 80))}`,
        { file, line: 1 },
      );
    }
    if (fields.join(",") !== expected) {
      const missing = CSV_HEADER.filter((c) => !fields.includes(c));
      const extra = fields.filter((f) => !(CSV_HEADER as readonly string[]).includes(f));
      const detail = [missing.length ? `missing ${missing.join(", ")}` : "", extra.length ? `unexpected ${extra.join(", ")}` : ""]
        .filter(Boolean)
        .join("; ");
      throw new BadInputError(
        `header must be ${JSON.stringify(expected)}, found ${JSON.stringify(line.slice(0, 120))}${detail ? ` (${detail})` : ""}`,
        { file, line: 1 },
      );
    }
    return { format, delimiter: ",", header: true };
  }
  const delimiter = format === "dat" ? "::" : "\t";
  const fields = line.split(delimiter);
  if (fields.length !== 4) {
    throw new BadInputError(
      `expected 4 fields separated by ${JSON.stringify(delimiter)} (${describeFormat(format)}), found ${fields.length}`,
      { file, line: 1 },
    );
  }
  return { format, delimiter, header: false };
}
