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
  /** What each field of a line holds, in file order (undefined: a column etl ignores); `CSV_HEADER` when absent. */
  columns?: readonly (RatingsColumn | undefined)[];
}

/** The columns etl reads; only timestamp may be missing (it is dropped unless kept). */
export type RatingsColumn = (typeof CSV_HEADER)[number];

/** The fields of a line, as `info` says. */
export function columnsOf(info: FormatInfo): readonly (RatingsColumn | undefined)[] {
  return info.columns ?? CSV_HEADER;
}

/** A MovieLens ratings line is under 100 bytes; anything this long is not a ratings file. */
export const MAX_LINE_BYTES = 64 * 1024;

/** The header ml-latest*, ml-20m, ml-25m and ml-32m use. */
export const CSV_HEADER = ["userId", "movieId", "rating", "timestamp"] as const;

/** Header names taken for each column without a mapping, compared in lower case. */
const SPELLINGS: Record<RatingsColumn, readonly string[]> = {
  userId: ["user", "user_id", "userid"],
  movieId: ["item", "item_id", "itemid", "movie", "movie_id", "movieid"],
  rating: ["rating"],
  timestamp: ["timestamp"],
};

const SPELLINGS_DOC = "user/user_id/userId, item/item_id/movie/movie_id/movieId, rating, timestamp (optional), in any case";

/**
 * The `etl_columns` parameter: `userId=uid,movieId=iid,rating=stars` names the header column that
 * holds each of etl's columns (a key may also be one of its spellings, as `user=uid`).
 */
export function parseColumnMapping(text: string | undefined): Partial<Record<RatingsColumn, string>> {
  const mapping: Partial<Record<RatingsColumn, string>> = {};
  if (text === undefined || text.trim() === "") return mapping;
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    const key = pair.slice(0, Math.max(eq, 0)).trim().toLowerCase();
    const name = pair.slice(eq + 1).trim();
    const column = CSV_HEADER.find((c) => c.toLowerCase() === key || SPELLINGS[c].includes(key));
    if (eq < 0 || !column || name === "") {
      throw new BadParameterError(
        "etl_columns",
        `"${pair.trim()}" is not COLUMN=HEADER_NAME with COLUMN one of ${CSV_HEADER.join(", ")} (e.g. userId=uid,movieId=iid,rating=stars)`,
      );
    }
    if (mapping[column] !== undefined) throw new BadParameterError("etl_columns", `maps ${column} twice`);
    mapping[column] = name;
  }
  return mapping;
}

/** Which header field holds each column: the mapping first, then the common spellings. */
function headerColumns(fields: readonly string[], mapping: Partial<Record<RatingsColumn, string>>, file: string): FormatInfo["columns"] {
  const columns: (RatingsColumn | undefined)[] = fields.map(() => undefined);
  const where = { file, line: 1 };
  const found = `found ${JSON.stringify(fields.join(",").slice(0, 120))}`;
  for (const column of CSV_HEADER) {
    const mapped = mapping[column];
    let at: number[];
    if (mapped !== undefined) {
      at =
        fields.indexOf(mapped) >= 0
          ? [fields.indexOf(mapped)]
          : fields.flatMap((f, i) => (f.toLowerCase() === mapped.toLowerCase() ? [i] : []));
      if (at.length !== 1)
        throw new BadInputError(`etl_columns maps ${column} to "${mapped}", which the header does not name once (${found})`, where);
    } else {
      at = fields.flatMap((f, i) => (SPELLINGS[column].includes(f.toLowerCase()) ? [i] : []));
      if (at.length > 1) {
        throw new BadInputError(
          `header names ${column} twice (${at.map((i) => fields[i]).join(", ")}); choose one with -P etl_columns=${column}=NAME`,
          where,
        );
      }
      if (at.length === 0 && column === "timestamp") continue;
      if (at.length === 0) {
        throw new BadInputError(
          `header has no ${column} column (${found}); accepted names: ${SPELLINGS_DOC}; or name yours with -P etl_columns=${column}=NAME`,
          where,
        );
      }
    }
    if (columns[at[0]] !== undefined)
      throw new BadInputError(`header column "${fields[at[0]]}" is both ${columns[at[0]]} and ${column}`, where);
    columns[at[0]] = column;
  }
  return columns;
}

const DESCRIPTIONS: Record<RatingsFormat, string> = {
  csv: `CSV with a header naming ${SPELLINGS_DOC} (ml-latest*, ml-20m, ml-25m, ml-32m: userId,movieId,rating,timestamp)`,
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
export async function detectFormat(
  file: string,
  forced?: RatingsFormat,
  mapping: Partial<Record<RatingsColumn, string>> = {},
): Promise<FormatInfo> {
  const { line, size, complete } = await readFirstLine(file);
  if (!complete || Buffer.byteLength(line) > MAX_LINE_BYTES) {
    throw new BadInputError(`line is longer than ${MAX_LINE_BYTES} bytes (a ratings line is under 100); not a ratings file?`, {
      file,
      line: 1,
    });
  }
  if (size === 0 || line.trim() === "") throw new BadInputError("empty file, expected ratings", { file, line: 1 });
  const looksLike: RatingsFormat | undefined =
    /^\s*user/i.test(line) || line.includes(",") ? "csv" : line.includes("::") ? "dat" : line.includes("\t") ? "tsv" : undefined;
  const format = forced ?? looksLike;
  if (!format) {
    throw new BadInputError(
      `cannot tell the ratings format from the first line ${JSON.stringify(line.slice(0, 80))}: expected one of ${RATINGS_FORMATS.map(describeFormat).join("; ")}`,
      { file, line: 1 },
    );
  }
  if (format === "csv") {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length === 1 && /[;|\t]/.test(line)) {
      throw new BadInputError(
        `wrong delimiter: expected ',' in a header such as ${JSON.stringify(CSV_HEADER.join(","))}, found ${JSON.stringify(line.slice(0, 80))}`,
        { file, line: 1 },
      );
    }
    return { format, delimiter: ",", header: true, columns: headerColumns(fields, mapping, file) };
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
