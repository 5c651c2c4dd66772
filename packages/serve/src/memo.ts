/**
 * Memo files: results derived from a set of cache entries (a run's test figures, its drawn
 * charts), kept in a directory the caller gives so that a fully cached run need not recompute
 * them. A memo is best effort both ways: one that is absent, unreadable or does not fit its schema
 * is recomputed (a damaged one is logged), and one that cannot be written is skipped.
 */
import path from "node:path";
import type * as v from "valibot";
import { CorruptArtifactError, parseJsonFile, writeFileAtomic, type Logger } from "@ms/contracts";

/** The memo `name` in `dir`, validated by `schema`; undefined when absent or unusable. */
export async function readMemo<S extends v.GenericSchema>(
  dir: string,
  name: string,
  schema: S,
  logger?: Logger,
): Promise<v.InferOutput<S> | undefined> {
  try {
    return await parseJsonFile(path.join(dir, name), schema);
  } catch (error) {
    if (error instanceof CorruptArtifactError) logger?.warn({ err: error }, `memo recomputed: ${error.message}`);
    return undefined;
  }
}

/** Writes a memo; best effort (a read-only cache recomputes next time). */
export async function writeMemo(dir: string, name: string, value: unknown): Promise<void> {
  await writeFileAtomic(path.join(dir, name), JSON.stringify(value)).catch(() => undefined);
}
