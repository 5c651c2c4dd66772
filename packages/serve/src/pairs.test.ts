/**
 * `readPairs`: `userId,movieId` lines (comma, tab or space), blank lines skipped, a header's names
 * deciding which column is which; ids are decimal digits only; a bad line is exit 3 naming the
 * file and line, an unreadable file exit 3 naming the file; `pairChunks` streams them in chunks
 * with their line numbers; `readUserIds` reads `--users` files the same way.
 * (Ranking through `ms recommend` on a real run is tested by @ms/driver.)
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { exitCodeFor } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countPairs, pairChunks, readPairs, readUserIds } from "./pairs.js";

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

describe("pairChunks", () => {
  it("streams the pairs in chunks of the given size, each pair with its line number", async () => {
    const lines = ["userId,movieId", ...Array.from({ length: 10 }, (_, i) => (i === 4 ? "" : `${i + 1},${100 + i}`))];
    const f = await file("chunks.csv", `${lines.join("\n")}\n`);
    const chunks = [];
    for await (const c of pairChunks(f, 4))
      chunks.push({ users: Array.from(c.userIds), movies: Array.from(c.movieIds), lines: Array.from(c.lines) });
    expect(chunks.map((c) => c.users)).toEqual([[1, 2, 3, 4], [6, 7, 8, 9], [10]]);
    expect(chunks[1].movies).toEqual([105, 106, 107, 108]);
    expect(chunks[1].lines).toEqual([7, 8, 9, 10]);
    expect(await countPairs(f)).toBe(9);
  });

  it("a header naming a timestamp column gives each pair its time; a bad one is exit 3 naming its line", async () => {
    const f = await file("timed.csv", "userId,movieId,rating,timestamp\n1,10,4.5,964982703\n2,20,3,964981247.5\n");
    const chunks = [];
    for await (const c of pairChunks(f)) chunks.push(c);
    expect(chunks).toHaveLength(1);
    expect(Array.from(chunks[0].timestamps ?? [])).toEqual([964982703, 964981247.5]);
    const untimed = await file("untimed.csv", "1,10,4.5\n2,20,3\n");
    for await (const c of pairChunks(untimed)) expect(c.timestamps).toBeUndefined();
    const bad = await file("badtime.csv", "userId,movieId,timestamp\n1,10,964982703\n2,20,\n");
    const error = await countPairs(bad).catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(3);
    expect((error as Error).message).toContain(`${bad}:3: the timestamp column holds ""`);
  });

  it("a bad line deep in the file names its line", async () => {
    const body = Array.from({ length: 200_000 }, (_, i) => `${i},${i}`);
    body[150_000] = "1,x";
    const f = await file("deep.csv", body.join("\n"));
    const error = await countPairs(f).catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(3);
    expect((error as Error).message).toContain(`${f}:150001: not a "userId,movieId" line`);
  });
});

describe("readUserIds", () => {
  it("reads one id per line, with or without a header naming the column", async () => {
    expect(Array.from(await readUserIds(await file("u1.txt", "3\n\n1\r\n3\n")))).toEqual([3, 1, 3]);
    expect(Array.from(await readUserIds(await file("u2.csv", "movieId,userId\n9,4\n9,5\n")))).toEqual([4, 5]);
  });

  it("a bad id, an unknown header or an empty file is exit 3 naming the file (and line)", async () => {
    const bad = await file("u3.txt", "1\n2x\n");
    const e1 = await readUserIds(bad).catch((e: unknown) => e);
    expect(exitCodeFor(e1)).toBe(3);
    expect((e1 as Error).message).toContain(`${bad}:2: not a user id`);
    const header = await file("u4.csv", "movie\n1\n");
    expect((await readUserIds(header).catch((e: Error) => e)).toString()).toContain(`${header}:1: a header needs a user column`);
    const empty = await file("u5.txt", "\n\n");
    expect((await readUserIds(empty).catch((e: Error) => e)).toString()).toContain(`${empty}: holds no user ids`);
  });
});
