/**
 * The movies-file reader on real files: ml-latest-small's movies.csv (quoted titles with commas),
 * and movies.dat / u.item layouts written to a temp directory, Latin-1 included; a bad line names
 * the file and line.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BadInputError } from "@ms/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { csvFields, readMovieTitles } from "./movies.js";

const SMALL = process.env.MS_MOVIELENS_SMALL ?? "/work/shared/movielens/ml-latest-small";
const dirs: string[] = [];
async function temp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "ms-movies-"));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("readMovieTitles", () => {
  it.skipIf(!existsSync(path.join(SMALL, "movies.csv")))("reads ml-latest-small's movies.csv beside its ratings.csv", async () => {
    const m = await readMovieTitles(path.join(SMALL, "ratings.csv"));
    expect(m?.file).toBe(path.join(SMALL, "movies.csv"));
    expect(m?.titles.size).toBe(9742);
    expect(m?.titles.get(1)).toBe("Toy Story (1995)");
    expect(m?.titles.get(11)).toBe("American President, The (1995)"); // quoted, with a comma
  });

  it("reads movies.dat (::) and u.item (|), Latin-1 as well as UTF-8", async () => {
    const dat = await temp();
    await writeFile(
      path.join(dat, "movies.dat"),
      Buffer.from("1::Toy Story (1995)::Animation\n2::Bruxelles, ma belle (1990)::Drama\n", "latin1"),
    );
    expect([...(await readMovieTitles(path.join(dat, "ratings.dat")))!.titles]).toEqual([
      [1, "Toy Story (1995)"],
      [2, "Bruxelles, ma belle (1990)"],
    ]);
    const item = await temp();
    await writeFile(
      path.join(item, "u.item"),
      Buffer.from("1|Toy Story (1995)|01-Jan-1995||http://x|0|0\n2|Café Society (1995)|01-Jan-1995||x|0\n", "latin1"),
    );
    expect((await readMovieTitles(path.join(item, "u.data")))!.titles.get(2)).toBe("Café Society (1995)");
  });

  it("undefined without a movies file; a bad line names the file and line", async () => {
    const none = await temp();
    expect(await readMovieTitles(path.join(none, "ratings.csv"))).toBeUndefined();
    await writeFile(path.join(none, "movies.csv"), 'movieId,title,genres\n1,"Toy Story (1995),Comedy\n');
    const error = await readMovieTitles(path.join(none, "ratings.csv")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toContain(`${path.join(none, "movies.csv")}:2: not a movies line (unterminated quote)`);
  });

  it("splits CSV fields with doubled quotes", () => {
    expect(csvFields('5,"Father of the Bride Part II (1995)",Comedy')).toEqual(["5", "Father of the Bride Part II (1995)", "Comedy"]);
    expect(csvFields('7,"Say ""Hi"", Bob",x')).toEqual(["7", 'Say "Hi", Bob', "x"]);
  });
});
