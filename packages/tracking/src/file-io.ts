/**
 * The file operations the local store is built from: atomic replacement by rename, copies that
 * land whole, a walk that skips other writers' staging files, and the errors a key clash gives.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { asStorageError, BadParameterError, walkFiles } from "@ms/contracts";

export function isErrno(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && "code" in error && typeof error.code === "string" && codes.includes(error.code);
}

/** A staging name beside `base` in `dir`, unique to this process and call. */
export function tmpName(dir: string, base: string): string {
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Replaces `file` atomically: readers see the old or the new content, never a mix. */
export async function writeAtomic(file: string, content: string | Uint8Array): Promise<void> {
  const tmp = tmpName(path.dirname(file), path.basename(file));
  try {
    await fs.writeFile(tmp, content);
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw asStorageError(error, file);
  }
}

/** The error for two keys of a run where one is a directory of the other ('a' and 'a/b'). */
export function keyClash(key: string, dir: string): BadParameterError {
  return new BadParameterError(
    `${path.basename(dir).replace(/s$/, "")} key ${JSON.stringify(key)}`,
    "clashes with another key of the run (one is a prefix path of the other, e.g. 'a' and 'a/b'), which MLflow's file store cannot hold",
  );
}

/** Files below `root`, skipping another writer's staging files (`.<name>.tmp`). */
export function walkRunFiles(root: string): Promise<string[]> {
  return walkFiles(root, { skip: (name) => name.startsWith(".") && name.endsWith(".tmp") });
}

async function copyOne(src: string, dest: string): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true }).catch((e: unknown) => Promise.reject(asStorageError(e, dest)));
  const tmp = tmpName(path.dirname(dest), path.basename(dest));
  try {
    await fs.copyFile(src, tmp);
    await fs.rename(tmp, dest);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw asStorageError(error, dest);
  }
}

/** Copies a file or a directory tree to `dest`, each file landing whole (by rename). */
export async function copyIn(src: string, dest: string, isDirectory: boolean): Promise<void> {
  if (!isDirectory) return copyOne(src, path.join(dest, path.basename(src)));
  for (const rel of await walkRunFiles(src)) await copyOne(path.join(src, rel), path.join(dest, ...rel.split("/")));
}
