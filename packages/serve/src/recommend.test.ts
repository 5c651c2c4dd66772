/**
 * `readPairs`: `userId,movieId` lines (comma, tab or space), blank lines skipped, a header's names
 * deciding which column is which; ids are decimal digits only; a bad line is exit 3 naming the
 * file and line, an unreadable file exit 3 naming the file.
 * (Ranking through `ms recommend` on a real run is tested by @ms/driver.)
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { exitCodeFor } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPairs } from "./recommend.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ms-serve-pairs-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const f = path.join(dir, name);
  await writeFile(f, text);
  return f;
}

describe("readPairs", () => {
  it("reads pairs, skipping a header and blank lines", async () => {
    const f = await file("ok.csv", "userId,movieId\r\n3,10\n\n5\t20\n 8 30 \n");
    expect(await readPairs(f)).toEqual([
      { userId: 3, movieId: 10 },
      { userId: 5, movieId: 20 },
      { userId: 8, movieId: 30 },
    ]);
  });

  it("a bad line is exit 3 naming the file and the line", async () => {
    const f = await file("bad.csv", "3,5\n3,five\n");
    const error = await readPairs(f).catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(3);
    expect((error as Error).message).toContain(`${f}:2: not a "userId,movieId" line`);
  });

  it("ids are decimal digits: 0x1, 1e0, 1.0 and an empty field are bad lines, not ids", async () => {
    for (const [name, line] of [
      ["hex.csv", "0x1,0x32"],
      ["exp.csv", "1e0,50"],
      ["frac.csv", "1,50.0"],
      ["empty.csv", ",50"],
    ]) {
      const f = await file(name, `1,2\n${line}\n`);
      const error = await readPairs(f).catch((e: unknown) => e);
      expect(exitCodeFor(error), line).toBe(3);
      expect((error as Error).message).toContain(`${f}:2: not a "userId,movieId" line`);
    }
  });

  it("a header's names say which column is which; an unknown header is refused naming line 1", async () => {
    const swapped = await file("swapped.csv", "movieId,userId\n50,1\n60,2\n");
    expect(await readPairs(swapped)).toEqual([
      { userId: 1, movieId: 50 },
      { userId: 2, movieId: 60 },
    ]);
    const other = await file("other.csv", "user_id,item_id,extra\n3,30,x\n");
    expect(await readPairs(other)).toEqual([{ userId: 3, movieId: 30 }]);
    const unknown = await file("unknown.csv", "a,b\n1,2\n");
    const error = await readPairs(unknown).catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(3);
    expect((error as Error).message).toContain(`${unknown}:1: a header needs a user column`);
  });

  it("a file that cannot be read is exit 3 naming it", async () => {
    const missing = path.join(dir, "absent.csv");
    const error = await readPairs(missing).catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(3);
    expect((error as Error).message).toContain(missing);
  });
});
