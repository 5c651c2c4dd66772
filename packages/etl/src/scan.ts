/**
 * The byte-level checks DuckDB's CSV reader cannot make, run over the raw ratings file while
 * DuckDB converts it: a `_` anywhere after the header (DuckDB reads `1_000` as 1000 in every
 * numeric type, and no MovieLens field holds one); an id field holding anything but digits, `-`, spaces and CR
 * (DuckDB reads `1.0` and `9.9e1` as whole numbers; the grammar is contracts' `parseId`); a line
 * ending unlike the first line's (DuckDB fails on mixed CR LF and LF without a line number); and
 * any line longer than `MAX_LINE_BYTES` (DuckDB drops a last line of 32 MiB or more without a
 * word and fails on one in the middle with an internal error). It costs one read of the file, a
 * few `memchr` calls per chunk and a look at the first bytes of each line (~0.05 s of CPU per
 * million ratings), so a clean result is remembered by file identity, as digests are: an
 * unchanged file is scanned once.
 */
import { promises as fs } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { cacheLayout } from "@ms/cache";
import { BadInputError, parseId, parseJsonFile, sha256Hex } from "@ms/contracts";
import * as v from "valibot";
import { columnsOf, MAX_LINE_BYTES, type FormatInfo } from "./formats.js";

const NL = 0x0a;
const CR = 0x0d;
const UNDERSCORE = 0x5f;
const CHUNK = 4 * 1024 * 1024;

export interface ScanOptions {
  info: FormatInfo;
  /** Data rows DuckDB reads (`LIMIT`); -1 for all. Lines after them are not checked, as DuckDB does not read them. */
  maxRows: number;
  maxLineBytes?: number;
  /** Read size; tests make it small to put lines across chunk boundaries. */
  chunkBytes?: number;
}

type Finding = { kind: "underscore" | "id" | "ending"; offset: number } | { kind: "long"; lineStart: number };

/** Resolves to the first problem found, as a `BadInputError` naming file and line, or undefined. */
export async function scanRatingsText(file: string, options: ScanOptions): Promise<BadInputError | undefined> {
  return (await scan(file, options)).problem;
}

async function scan(file: string, options: ScanOptions): Promise<{ problem?: BadInputError; whole: boolean }> {
  const maxLine = options.maxLineBytes ?? MAX_LINE_BYTES;
  const handle = await open(file, "r");
  try {
    const chunkBytes = options.chunkBytes ?? CHUNK;
    const found = await findProblem(
      handle,
      maxLine,
      options.maxRows < 0 ? -1 : options.maxRows + (options.info.header ? 1 : 0),
      chunkBytes,
      options.info,
    );
    if (found === "whole" || found === "part") return { whole: found === "whole" };
    return { problem: await describe(handle, file, found, maxLine, options.info), whole: false };
  } finally {
    await handle.close();
  }
}

/** `<cache>/etl-scans/<hash of the path>.json`: a file found clean to its end, and under which line limit. */
/** `idFields` also tells a record from before the id and line-ending checks, which proves nothing now. */
const ScanRecordSchema = v.object({
  path: v.string(),
  identity: v.string(),
  maxLineBytes: v.pipe(v.number(), v.integer(), v.gtValue(0)),
  idFields: v.array(v.pipe(v.number(), v.integer())),
});
type ScanRecord = v.InferOutput<typeof ScanRecordSchema>;

async function identityOf(file: string): Promise<string> {
  const st = await fs.stat(file, { bigint: true });
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(":");
}

/**
 * `scanRatingsText`, skipped when the same file (device, inode, size, mtime and ctime in ns) was
 * already found clean to its end in the cache layout's etl-scans place. A record that cannot be written
 * only costs the reuse.
 */
export async function scanRatingsTextRemembered(file: string, options: ScanOptions, cacheDir: string): Promise<BadInputError | undefined> {
  const abs = path.resolve(file);
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const recordFile = path.join(cacheLayout(cacheDir).etlScans, `${sha256Hex(abs).slice(0, 40)}.json`);
  const before = await identityOf(abs);
  const idFields = idFieldsOf(options.info);
  try {
    const known = await parseJsonFile(recordFile, ScanRecordSchema);
    if (known.path === abs && known.identity === before && known.maxLineBytes === maxLineBytes && known.idFields.join() === idFields.join())
      return undefined;
  } catch {
    // No record, or an unreadable or corrupt one: scan (and replace it).
  }
  const { problem, whole } = await scan(abs, options);
  // Only a scan that read to the end proves the file clean for any row limit.
  if (!problem && whole && (await identityOf(abs)) === before) {
    const temp = `${recordFile}.${process.pid}.tmp`;
    try {
      await fs.mkdir(path.dirname(recordFile), { recursive: true });
      await fs.writeFile(temp, JSON.stringify({ path: abs, identity: before, maxLineBytes, idFields } satisfies ScanRecord));
      await fs.rename(temp, recordFile);
    } catch {
      await fs.rm(temp, { force: true }).catch(() => undefined);
    }
  }
  return problem;
}

/** The fields of a line that hold ids. */
function idFieldsOf(info: FormatInfo): number[] {
  return columnsOf(info).flatMap((c, i) => (c === "userId" || c === "movieId" ? [i] : []));
}

/** How the line walk reads a line: `idAt[k]` says whether the bytes after the k-th delimiter byte belong to an id. */
interface LineRules {
  delimiter: number;
  idAt: boolean[];
}

/** Where the line walk stands between chunks. */
interface LineWalk {
  /** Delimiter bytes seen on the current line; -1 on a header line, which is only skipped. */
  delims: number;
  /** Whether line 1 ended in CR LF; undefined until it ends. */
  crlf: boolean | undefined;
  /** The last byte of the previous chunk. */
  prev: number;
  /** File offset of line 2 when line 1 is a header (whose names may hold '_'), else 0; Infinity until found. */
  bodyStart: number;
}

function lineRules(info: FormatInfo): LineRules {
  const ids = idFieldsOf(info);
  const width = info.delimiter.length;
  const last = Math.max(...ids);
  const idAt = Array.from({ length: last * width + 1 }, (_, k) => k % width === 0 && ids.includes(k / width));
  return { delimiter: info.delimiter.charCodeAt(0), idAt };
}

/**
 * Walks the lines of a chunk: the bytes of id fields, then a `memchr` to the line's end, whose
 * CR must be there exactly when line 1 had one. Returns the offset of the first bad byte, or -1.
 */
function walkLines(chunk: Buffer, pos: number, walk: LineWalk, rules: LineRules): number {
  const { delimiter, idAt } = rules;
  const n = chunk.length;
  let i = 0;
  while (i < n) {
    for (; walk.delims >= 0 && walk.delims < idAt.length && i < n; i++) {
      const c = chunk[i];
      if (c === NL) break;
      if (c === delimiter) walk.delims++;
      // parseId's grammar is stricter; this is the fast superset, and `describe` applies parseId.
      else if (idAt[walk.delims] && (c < 0x30 || c > 0x39) && c !== 0x2d && c !== 0x20 && c !== CR) return i;
    }
    const nl = chunk.indexOf(NL, i);
    if (nl === -1) break;
    const cr = (nl > 0 ? chunk[nl - 1] : walk.prev) === CR;
    if (walk.crlf === undefined) walk.crlf = cr;
    else if (cr !== walk.crlf) return nl;
    if (walk.delims === -1) walk.bodyStart = pos + nl + 1;
    walk.delims = 0;
    i = nl + 1;
  }
  if (n > 0) walk.prev = chunk[n - 1];
  return -1;
}

/** The first problem, or whether the check reached the end of the file ("whole") or stopped at the row limit ("part"). */
async function findProblem(
  handle: FileHandle,
  maxLine: number,
  maxLines: number,
  chunkBytes: number,
  info: FormatInfo,
): Promise<Finding | "whole" | "part"> {
  const buf = Buffer.allocUnsafe(chunkBytes);
  const rules = lineRules(info);
  const walk: LineWalk = { delims: info.header ? -1 : 0, crlf: undefined, prev: -1, bodyStart: info.header ? Infinity : 0 };
  let pos = 0;
  /** Offset of the first byte of the line in progress. */
  let lineStart = 0;
  let lines = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, 0, chunkBytes, pos);
    if (bytesRead === 0) break;
    let chunk = buf.subarray(0, bytesRead);
    let done = false;
    if (maxLines >= 0) {
      // Count lines only up to the row limit, so the cost follows the rows DuckDB reads.
      for (let i = chunk.indexOf(NL); i !== -1; i = chunk.indexOf(NL, i + 1)) {
        if (++lines === maxLines) {
          chunk = chunk.subarray(0, i + 1);
          done = true;
          break;
        }
      }
    }
    const bad = walkLines(chunk, pos, walk, rules);
    const underscore = walk.bodyStart < pos + chunk.length ? chunk.indexOf(UNDERSCORE, Math.max(0, walk.bodyStart - pos)) : -1;
    // The earlier of the two findings; at the same byte, '_' has the more helpful message.
    const stop = bad !== -1 && (underscore === -1 || bad < underscore) ? bad : underscore;
    // `at` is the newline before the line in progress (negative: it started in an earlier chunk).
    // Hop to the last newline at most maxLine + 1 bytes ahead; a hop that finds none is a long line.
    let at = lineStart - pos - 1;
    for (;;) {
      const reach = at + maxLine + 1;
      if (reach >= chunk.length || (stop !== -1 && at >= stop)) break;
      const next = chunk.lastIndexOf(NL, reach);
      if (next === -1 || next <= at) return { kind: "long", lineStart: pos + at + 1 };
      at = next;
    }
    if (stop !== -1) {
      const kind = stop !== underscore ? (chunk[stop] === NL ? "ending" : "id") : "underscore";
      return { kind, offset: pos + stop };
    }
    const last = chunk.lastIndexOf(NL);
    if (last !== -1 && last > at) at = last;
    lineStart = pos + at + 1;
    pos += chunk.length;
    if (done) return "part";
  }
  if (pos - lineStart > maxLine) return { kind: "long", lineStart };
  return "whole";
}

/** The line number of the byte at `offset` (error path only: one more read up to it). */
async function lineOf(handle: FileHandle, offset: number): Promise<{ line: number; start: number }> {
  const buf = Buffer.allocUnsafe(CHUNK);
  let line = 1;
  let start = 0;
  for (let pos = 0; pos < offset; ) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, offset - pos), pos);
    if (bytesRead === 0) break;
    const chunk = buf.subarray(0, bytesRead);
    for (let i = chunk.indexOf(NL); i !== -1; i = chunk.indexOf(NL, i + 1)) {
      line++;
      start = pos + i + 1;
    }
    pos += bytesRead;
  }
  return { line, start };
}

async function describe(handle: FileHandle, file: string, finding: Finding, maxLine: number, info: FormatInfo): Promise<BadInputError> {
  if (finding.kind === "long") {
    const { line } = await lineOf(handle, finding.lineStart);
    return new BadInputError(`line is longer than ${maxLine} bytes (a ratings line is under 100); not a ratings file?`, { file, line });
  }
  const { line, start } = await lineOf(handle, finding.offset);
  if (finding.kind === "ending") {
    return new BadInputError(
      "mixed line endings: this line ends differently (CR LF or LF alone) from line 1; convert the file to one kind (e.g. dos2unix)",
      { file, line },
    );
  }
  const buf = Buffer.alloc(Math.min(maxLine, 4096));
  const { bytesRead } = await handle.read(buf, 0, buf.length, start);
  const text = buf.subarray(0, bytesRead).toString("utf8").split("\n")[0].replace(/\r$/, "");
  const fields = text.split(info.delimiter);
  const names = columnsOf(info);
  if (finding.kind === "id") {
    const index = fields.findIndex((f, i) => (names[i] === "userId" || names[i] === "movieId") && parseId(f) === undefined);
    if (index >= 0) {
      return new BadInputError(
        `${names[index]} value ${JSON.stringify(fields[index].slice(0, 40))} is not an id (decimal digits only, as 42)`,
        {
          file,
          line,
        },
      );
    }
    return new BadInputError(`an id field of ${JSON.stringify(text.slice(0, 120))} holds a character other than digits`, { file, line });
  }
  const index = fields.findIndex((f) => f.includes("_"));
  const name = names[index];
  const what = index >= 0 && name ? `${name} value ${JSON.stringify(fields[index].slice(0, 40))}` : `${JSON.stringify(text.slice(0, 120))}`;
  return new BadInputError(`${what} is not a plain number ('_' digit separators are not allowed)`, { file, line });
}
