/**
 * Small file-system helpers every package needs, in one place: writing a file so that readers
 * see the old or the new content and never half of it, and listing the files under a directory.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";

/**
 * Writes `data` to a temporary sibling and renames it over `file` (atomic on POSIX). The
 * temporary file is removed on failure and the error rethrown for the caller to classify.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`);
  try {
    await fs.writeFile(temp, data);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Relative paths (with `/`) of the regular files below `root`, depth first; `skip` leaves out
 * names (files or directories) such as another writer's staging files. A missing root is empty.
 */
export async function walkFiles(root: string, options: { skip?: (name: string) => boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ENOTDIR") return [];
      throw error;
    });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (options.skip?.(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await visit(r);
      else if (e.isFile()) out.push(r);
    }
  };
  await visit("");
  return out;
}
