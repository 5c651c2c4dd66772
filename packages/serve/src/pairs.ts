/**
 * Reading the inputs of a batch: `userId,movieId` pairs (`ms predict --pairs`) and user ids
 * (`ms recommend --users`), one per line, comma-, tab- or space-separated, an optional header
 * line, blank lines skipped. Files are read as a stream, line by line, and handed on in chunks,
 * so any number of pairs is read in bounded memory. Ids are decimal digits (`parseId`); a bad
 * line is a BadInputError naming the file and the line (exit 3). A pairs file whose header names a
 * `timestamp` column (as MovieLens' ratings files do) gives each pair its time, seconds since the
 * epoch, which a model with time effects scores it at; then every line needs one. Without such a
 * header no time is read (a third field may be anything, a rating say).
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { BadInputError, parseId } from "@ms/contracts";

export interface Pair {
  userId: number;
  movieId: number;
}

/** A chunk of pairs as typed arrays, and the line number of each (for messages). */
export interface PairChunk {
  userIds: Int32Array;
  movieIds: Int32Array;
  lines: Int32Array;
  /** Per pair, seconds since the epoch: when the header names a `timestamp` column. */
  timestamps?: Float64Array;
}

interface PairColumns {
  user: number;
  movie: number;
  /** The timestamp column, or -1. */
  time: number;
}

const USER_NAMES = new Set(["userid", "user_id", "user"]);
const MOVIE_NAMES = new Set(["movieid", "movie_id", "movie", "itemid", "item_id", "item"]);
const TIME_NAME = "timestamp";
/** Seconds since the epoch as a file writes them: decimal, an optional sign and fraction. */
const TIMESTAMP = /^-?\d{1,15}(\.\d+)?$/;
const SEPARATOR = /\s*[,\t ]\s*/;
/** Pairs per chunk unless asked otherwise: 65,536 pairs are 768 KiB of typed arrays. */
export const PAIR_CHUNK = 65_536;

/** Where the user and the movie ids are, by a header's names (`movieId,userId` is read that way round). */
function pairColumns(names: readonly string[], file: string, line: number): PairColumns {
  const lower = names.map((n) => n.toLowerCase());
  const user = lower.findIndex((n) => USER_NAMES.has(n));
  const movie = lower.findIndex((n) => MOVIE_NAMES.has(n));
  if (user < 0 || movie < 0)
    throw new BadInputError(
      `a header needs a user column (userId, user_id, user) and a movie column (movieId, movie_id, movie, item_id), found ${JSON.stringify(names.join(","))}`,
      { file, line },
    );
  return { user, movie, time: lower.indexOf(TIME_NAME) };
}

/** The file's lines, streamed, with their 1-based numbers; an unreadable file is exit 3 naming it. */
async function* linesOf(file: string): AsyncGenerator<{ text: string; line: number }> {
  const stream = createReadStream(file, { encoding: "utf8" });
  const failed = new Promise<never>((_, reject) =>
    stream.once("error", (error) => reject(new BadInputError(`cannot be read (${error.message})`, { file }, { cause: error }))),
  );
  failed.catch(() => undefined);
  const reader = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  const it = reader[Symbol.asyncIterator]();
  let line = 0;
  try {
    for (;;) {
      const next = await Promise.race([it.next(), failed]);
      if (next.done) break;
      yield { text: next.value, line: ++line };
    }
    // A read error after the last line (e.g. EISDIR on the first read) surfaces here.
    await Promise.race([failed, Promise.resolve()]);
  } finally {
    reader.close();
    stream.destroy();
  }
}

/** Streams the pairs of `file` in chunks of up to `size`; the header (first line with text, a name first) decides the columns. */
export async function* pairChunks(file: string, size = PAIR_CHUNK): AsyncGenerator<PairChunk> {
  let columns: PairColumns = { user: 0, movie: 1, time: -1 };
  let first = true;
  const users = new Int32Array(size);
  const movies = new Int32Array(size);
  const lines = new Int32Array(size);
  const times = new Float64Array(size);
  let n = 0;
  const chunk = (count: number): PairChunk => {
    const c: PairChunk = { userIds: users.slice(0, count), movieIds: movies.slice(0, count), lines: lines.slice(0, count) };
    if (columns.time >= 0) c.timestamps = times.slice(0, count);
    return c;
  };
  for await (const { text, line } of linesOf(file)) {
    const trimmed = text.trim();
    if (!trimmed) continue;
    const f = trimmed.split(SEPARATOR);
    if (first && /^[a-z_]+$/i.test(f[0] ?? "")) {
      columns = pairColumns(f, file, line);
      first = false;
      continue;
    }
    first = false;
    const u = parseId(f[columns.user] ?? "");
    const m = parseId(f[columns.movie] ?? "");
    if (u === undefined || m === undefined)
      throw new BadInputError(`not a "userId,movieId" line (ids are decimal digits): ${JSON.stringify(text.slice(0, 80))}`, { file, line });
    if (columns.time >= 0) {
      const t = f[columns.time] ?? "";
      if (!TIMESTAMP.test(t))
        throw new BadInputError(`the timestamp column holds ${JSON.stringify(t.slice(0, 40))}, not seconds since the epoch`, {
          file,
          line,
        });
      times[n] = Number(t);
    }
    users[n] = u;
    movies[n] = m;
    lines[n++] = line;
    if (n === size) {
      yield chunk(n);
      n = 0;
    }
  }
  if (n > 0) yield chunk(n);
}

/** Checks every line of a pairs file (one streamed pass) and counts its pairs: a bad line fails before anything is scored. */
export async function countPairs(file: string): Promise<number> {
  let count = 0;
  for await (const chunk of pairChunks(file)) count += chunk.userIds.length;
  return count;
}

/** `userId,movieId` lines (a header line and blank lines are skipped); a bad line names the file and line (exit 3). */
export async function readPairs(file: string): Promise<Pair[]> {
  const out: Pair[] = [];
  for await (const chunk of pairChunks(file))
    for (let i = 0; i < chunk.userIds.length; i++) out.push({ userId: chunk.userIds[i], movieId: chunk.movieIds[i] });
  return out;
}

/**
 * User ids, one per line (`ms recommend --users FILE`): an optional header naming the column
 * (userId, user_id, user; the first column otherwise), blank lines skipped, further columns
 * ignored. A bad line is exit 3 naming the file and line, before any user is answered.
 */
export async function readUserIds(file: string): Promise<Int32Array> {
  let ids = new Int32Array(1024);
  let n = 0;
  let column = 0;
  let first = true;
  for await (const { text, line } of linesOf(file)) {
    const trimmed = text.trim();
    if (!trimmed) continue;
    const f = trimmed.split(SEPARATOR);
    if (first && /^[a-z_]+$/i.test(f[0] ?? "")) {
      column = f.findIndex((name) => USER_NAMES.has(name.toLowerCase()));
      if (column < 0)
        throw new BadInputError(`a header needs a user column (userId, user_id, user), found ${JSON.stringify(trimmed.slice(0, 80))}`, {
          file,
          line,
        });
      first = false;
      continue;
    }
    first = false;
    const id = parseId(f[column] ?? "");
    if (id === undefined) throw new BadInputError(`not a user id (decimal digits): ${JSON.stringify(text.slice(0, 80))}`, { file, line });
    if (n === ids.length) {
      const grown = new Int32Array(n * 2);
      grown.set(ids);
      ids = grown;
    }
    ids[n++] = id;
  }
  if (n === 0) throw new BadInputError("holds no user ids", { file });
  return ids.slice(0, n);
}
