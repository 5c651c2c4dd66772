/**
 * A full disk inside DuckDB's Parquet write, on a real 256 KiB tmpfs: a StorageError (exit code 8)
 * naming the output, and nothing left on the small disk. Mounting needs root; elsewhere the test
 * says why it is skipped.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES, exitCodeFor, StorageError } from "@ms/contracts";
import { etl } from "./etl.js";
import { resolveEtlParams } from "./params.js";
import { writeSyntheticRatings } from "./synthetic.js";
import { tempDir } from "./__tests__/helpers.js";

let disk: string | undefined;
let whyNot = "";

let parent: string;

beforeAll(async () => {
  // Not tempDir(): its per-test cleanup would try to delete the mount point while mounted.
  parent = await mkdtemp(path.join(os.tmpdir(), "ms-etl-tmpfs-"));
  const dir = path.join(parent, "disk");
  await mkdir(dir);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir], { stdio: "pipe" });
    disk = dir;
  } catch (error) {
    whyNot = `cannot mount a tmpfs here (needs root): ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  }
});

afterAll(async () => {
  if (disk) execFileSync("umount", [disk]);
  await rm(parent, { recursive: true, force: true });
});

describe("etl on a full disk", () => {
  it("fails with a StorageError naming the output, and leaves nothing on the disk", async (ctx) => {
    if (!disk) ctx.skip(whyNot);
    const csv = path.join(await tempDir(), "ratings.csv");
    writeSyntheticRatings(csv, { rows: 200_000, seed: 5 });
    const out = path.join(disk!, "out");
    const error = await etl({ ratingsCsv: csv }, resolveEtlParams({ max_row_limit: -1 }), out).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(exitCodeFor(error)).toBe(EXIT_CODES.STORAGE);
    expect((error as Error).message).toMatch(new RegExp(`^cannot write ${out}: No space left on device`));
    expect(await readdir(disk!)).toEqual([]);
  });
});
