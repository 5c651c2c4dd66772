/**
 * The published entries under objects/: `<key>/` holds the step's files, its manifest.json and
 * entry.json (what the cache records beside the manifest, see `EntryInfoSchema`). An entry is
 * only ever replaced or removed whole, by one rename, so a reader never sees half of one.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { CorruptArtifactError, MANIFEST_FILE, parseJsonText, verifyArtifact, writeFileAtomic, type Manifest } from "@ms/contracts";
import { errnoCode, injectFault, storageError, type CacheFault } from "./faults.js";
import { hostTag, selfOwner } from "./owner.js";
import { EntryInfoSchema, type EntryInfo } from "./schemas.js";

export const ENTRY_FILE = "entry.json";

export type EntryCheck =
  | { status: "hit"; dir: string; manifest: Manifest; entry: EntryInfo; memoChanged: boolean }
  | { status: "missing" }
  | { status: "damaged"; problems: string[] }
  /** `gc` holds the key's lock and may be removing the entry: not to be used now. */
  | { status: "busy" };

const KEY_RE = /^[0-9a-f]{64}$/;

/** A fresh name under `tmp` owned by this process (`<pid>@<host tag>-<random>-<suffix>`). */
export function tempName(tmp: string, suffix: string): string {
  return path.join(tmp, `${process.pid}@${hostTag(selfOwner())}-${randomBytes(4).toString("hex")}-${suffix}`);
}

/** What is at `dir` (device, inode, birth time), undefined when nothing is. */
async function dirIdentity(dir: string): Promise<string | undefined> {
  const st = await fs.lstat(dir, { bigint: true }).catch(() => undefined);
  return st ? `${st.dev}:${st.ino}:${st.birthtimeNs}` : undefined;
}

export class Entries {
  constructor(
    readonly objects: string,
    private readonly tmp: string,
    private readonly root: string,
    private readonly fault: CacheFault | undefined,
  ) {}

  dir(key: string): string {
    return path.join(this.objects, key);
  }

  /**
   * `inspectOnce`, made safe against a concurrent publish or removal: an entry is only ever
   * replaced whole (one rename), so a directory that is gone or another one after a failed check
   * was raced, not damaged, and is judged again (missing before the check is simply missing).
   */
  async inspect(key: string, deep: boolean): Promise<EntryCheck> {
    const dir = this.dir(key);
    for (let attempt = 1; ; attempt++) {
      const before = await dirIdentity(dir);
      if (before === undefined) return { status: "missing" };
      const check = await this.inspectOnce(key, deep);
      if (check.status !== "damaged" || attempt === 5) return check;
      if ((await dirIdentity(dir)) === before) return check;
    }
  }

  private async inspectOnce(key: string, deep: boolean): Promise<EntryCheck> {
    const dir = this.dir(key);
    const entryFile = path.join(dir, ENTRY_FILE);
    const problems: string[] = [];
    let entry: EntryInfo | undefined;
    try {
      const parsed = parseJsonText(await fs.readFile(entryFile, "utf8"), EntryInfoSchema, entryFile);
      if (parsed.key !== key) problems.push(`${entryFile}: names key ${parsed.key}`);
      else entry = parsed;
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") {
        const exists = await fs.stat(dir).then(
          () => true,
          () => false,
        );
        if (!exists) return { status: "missing" };
      }
      problems.push(error instanceof CorruptArtifactError ? error.message : `${entryFile}: ${(error as Error).message}`);
    }
    const v = await verifyArtifact(dir, deep ? { deep: true } : { memo: entry?.identities ?? {} });
    problems.push(...v.problems);
    if (problems.length || !entry || !v.manifest) return { status: "damaged", problems };
    return {
      status: "hit",
      dir,
      manifest: v.manifest,
      entry: deep ? entry : { ...entry, identities: v.memo ?? {} },
      memoChanged: v.memoChanged,
    };
  }

  /** entry.json of `key`, undefined when absent or not a valid record. */
  async readInfo(key: string): Promise<EntryInfo | undefined> {
    const file = path.join(this.dir(key), ENTRY_FILE);
    try {
      return parseJsonText(await fs.readFile(file, "utf8"), EntryInfoSchema, file);
    } catch {
      return undefined;
    }
  }

  /** Keys of the published entries (names that look like a key; anything else is ignored). */
  async listKeys(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.objects);
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return [];
      throw storageError(error, this.objects, this.root);
    }
    return names.filter((n) => KEY_RE.test(n)).sort();
  }

  /** Total bytes of an entry's files. */
  async size(key: string): Promise<number> {
    const dir = this.dir(key);
    let total = 0;
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
      if (st?.isFile()) total += st.size;
    }
    return total;
  }

  /**
   * Checks a finished temp directory (every file re-hashed against its manifest), writes
   * entry.json with the recomputed digest and the files' identities, and renames it to
   * objects/<key>. An entry already there is swapped out first and deleted; the caller holds the
   * key's lock.
   */
  async publish(tempDir: string, info: EntryInfo): Promise<{ dir: string; manifest: Manifest; entry: EntryInfo }> {
    const target = this.dir(info.key);
    try {
      injectFault(this.fault, "publish", target);
    } catch (error) {
      throw storageError(error, target, this.root);
    }
    const v = await verifyArtifact(tempDir, { deep: true });
    if (!v.ok || !v.manifest)
      throw new CorruptArtifactError(`${info.step}: its output does not match its own manifest, not cached: ${v.problems.join("; ")}`);
    const entry: EntryInfo = { ...info, outputDigest: v.manifest.digest, identities: v.memo ?? {} };
    try {
      await fs.writeFile(path.join(tempDir, ENTRY_FILE), JSON.stringify(entry, null, 2) + "\n");
      const aside = tempName(this.tmp, "replaced");
      let moved = false;
      try {
        await fs.rename(target, aside);
        moved = true;
      } catch (error) {
        if (errnoCode(error) !== "ENOENT") throw error;
      }
      await fs.rename(tempDir, target);
      if (moved) await fs.rm(aside, { recursive: true, force: true });
    } catch (error) {
      throw storageError(error, target, this.root);
    }
    return { dir: target, manifest: v.manifest, entry };
  }

  /**
   * Records a use of an entry (for `gc` by age) and the identities of its files as last verified;
   * best effort, a read-only cache still serves hits.
   */
  async touch(info: EntryInfo): Promise<boolean> {
    const file = path.join(this.dir(info.key), ENTRY_FILE);
    try {
      injectFault(this.fault, "touch", file);
      await writeFileAtomic(file, JSON.stringify({ ...info, lastUsedAt: new Date().toISOString() }, null, 2) + "\n");
      return true;
    } catch {
      return false;
    }
  }

  /** Deletes an entry: renamed into tmp/ first so that no reader sees half of it. */
  async remove(key: string): Promise<void> {
    const aside = tempName(this.tmp, "removed");
    try {
      injectFault(this.fault, "clean", this.dir(key));
      await fs.rename(this.dir(key), aside);
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return;
      throw storageError(error, this.dir(key), this.root);
    }
    await fs.rm(aside, { recursive: true, force: true });
  }

  /** The manifest and entry.json of an entry, for logging only the small files. */
  smallFiles(key: string, extra: readonly string[] = []): string[] {
    return [MANIFEST_FILE, ENTRY_FILE, ...extra].map((f) => path.join(this.dir(key), f));
  }
}
