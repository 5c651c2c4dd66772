/**
 * The rules DuckDB's CSV reader cannot check cheaply, checked by one byte scan of the file that
 * runs on the Node thread while DuckDB converts on its own threads: ids with a fraction (DuckDB
 * rounds "1.5" to 2 when it reads an INTEGER column), and empty or non-integer timestamps (the
 * timestamp column is usually not written, so DuckDB does not even parse it).
 */
import { open } from "node:fs/promises";
import type { FormatInfo } from "./formats.js";

export interface ScanProblem {
  line: number;
  message: string;
}

const NEWLINE = 10;
const CR = 13;
const DOT = 46;
const ZERO = 48;
const DIGIT_MAX = 57;
const MINUS = 45;
const PLUS = 43;

/**
 * Returns the first line (1-based, counting the header) that breaks one of these rules, or
 * undefined. Only the first `maxRows` data rows are looked at (-1: all), like the conversion.
 */
export async function scanRatingsFile(file: string, info: FormatInfo, maxRows: number): Promise<ScanProblem | undefined> {
  const handle = await open(file, "r");
  const buf = Buffer.allocUnsafe(4 << 20);
  // '::' is two one-byte delimiters with an empty field between: fields sit at multiples of `step`.
  const delim = info.delimiter.charCodeAt(0);
  const step = info.delimiter.length;
  const userField = 0;
  const movieField = step;
  const timestampField = 3 * step;
  let line = 1;
  let inHeader = info.header;
  let rows = 0;
  let field = 0;
  let fieldBytes = 0;
  let dot = false;
  let fraction = false;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead; i++) {
        const b = buf[i];
        if (b === NEWLINE) {
          if (inHeader) {
            inHeader = false;
          } else {
            if (field === timestampField && fieldBytes === 0) return { line, message: "missing value for timestamp" };
            rows++;
            if (rows === maxRows) return undefined;
          }
          line++;
          field = 0;
          fieldBytes = 0;
          dot = false;
          fraction = false;
        } else if (inHeader) {
          continue;
        } else if (b === delim) {
          if (fraction) return { line, message: `${field === userField ? "userId" : "movieId"} is not an integer` };
          field++;
          fieldBytes = 0;
          dot = false;
        } else if (b !== CR) {
          fieldBytes++;
          if (field === userField || field === movieField) {
            if (b === DOT) dot = true;
            else if (dot && b > ZERO && b <= DIGIT_MAX) fraction = true;
          } else if (field === timestampField && !(b >= ZERO && b <= DIGIT_MAX) && !(fieldBytes === 1 && (b === MINUS || b === PLUS))) {
            return { line, message: "timestamp is not an integer" };
          }
        }
      }
    }
    // A last line without a newline.
    if (!inHeader && (field > 0 || fieldBytes > 0) && field === timestampField && fieldBytes === 0) return { line, message: "missing value for timestamp" };
    return undefined;
  } finally {
    await handle.close();
  }
}
