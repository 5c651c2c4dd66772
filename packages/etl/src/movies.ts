/**
 * Movie titles of a MovieLens release, read from the movies file beside its ratings file:
 * `movies.csv` (ml-latest*, ml-20m+: quoted CSV), `movies.dat` (ml-1m, ml-10m: `id::title::genres`)
 * or `u.item` (ml-100k: `id|title|date|...`). The older releases are Latin-1, not UTF-8; a byte
 * sequence that is not valid UTF-8 is read as Latin-1 so titles keep their accents.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { BadInputError } from "@ms/contracts";

/** The movies files a release may hold, in the order they are looked for. */
export const MOVIES_FILES = ["movies.csv", "movies.dat", "u.item"] as const;

export interface MovieTitles {
  /** The file the titles were read from. */
  file: string;
  titles: Map<number, string>;
}

function decode(bytes: Buffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString("latin1");
  }
}

/** One CSV record's fields (RFC 4180 quoting; MovieLens titles hold no newlines). */
export function csvFields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error("unterminated quote");
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(value);
      if (i >= line.length) return out;
      if (line[i] !== ",") throw new Error(`unexpected ${JSON.stringify(line[i])} after a quoted field`);
      i++;
    } else {
      const c = line.indexOf(",", i);
      if (c < 0) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, c));
      i = c + 1;
    }
  }
}

function parseLine(name: (typeof MOVIES_FILES)[number], line: string): [string, string] {
  if (name === "movies.csv") {
    const f = csvFields(line);
    if (f.length < 2) throw new Error("fewer than 2 fields");
    return [f[0], f[1]];
  }
  const f = line.split(name === "movies.dat" ? "::" : "|");
  if (f.length < 2) throw new Error("fewer than 2 fields");
  return [f[0], f[1]];
}

/** Parses a movies file's text; errors name the file and line (exit 3). */
export function parseMovies(file: string, text: string): Map<number, string> {
  const name = path.basename(file) as (typeof MOVIES_FILES)[number];
  const titles = new Map<number, string>();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === "") continue;
    let id: string;
    let title: string;
    try {
      [id, title] = parseLine(name, line);
    } catch (error) {
      throw new BadInputError(`not a movies line (${(error as Error).message})`, { file, line: n + 1 });
    }
    if (n === 0 && name === "movies.csv" && id === "movieId") continue;
    const movieId = Number(id);
    if (!Number.isSafeInteger(movieId)) throw new BadInputError(`movie id ${JSON.stringify(id)} is not an integer`, { file, line: n + 1 });
    titles.set(movieId, title);
  }
  return titles;
}

/**
 * The titles of the release whose ratings file is `ratingsFile`, from the first movies file
 * beside it; undefined when there is none (synthetic data, a bare ratings file).
 */
export async function readMovieTitles(ratingsFile: string): Promise<MovieTitles | undefined> {
  const dir = path.dirname(path.resolve(ratingsFile));
  for (const name of MOVIES_FILES) {
    const file = path.join(dir, name);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR") continue;
      throw new BadInputError(`cannot be read (${(error as Error).message})`, { file }, { cause: error });
    }
    return { file, titles: parseMovies(file, decode(bytes)) };
  }
  return undefined;
}
