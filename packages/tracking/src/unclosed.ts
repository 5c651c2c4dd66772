/**
 * A local record of runs that could not be ended in their tracking store (typically because the
 * server went away mid-run): a small JSON file that accumulates across driver runs, so somebody
 * can later end or delete those runs, which the server still shows as RUNNING.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { asStorageError, CorruptArtifactError, parseJsonFile } from "@ms/contracts";
import * as v from "valibot";
import { writeAtomic } from "./file-io.js";
import type { UnclosedRun } from "./types.js";

export const UNCLOSED_RUNS_FILE = "unclosed-runs.json";

const UnclosedRunSchema = v.object({
  runId: v.string(),
  trackingUri: v.string(),
  experimentId: v.optional(v.string()),
  runName: v.optional(v.string()),
  startTime: v.optional(v.number()),
  wantedStatus: v.optional(v.picklist(["FINISHED", "FAILED", "KILLED"])),
  error: v.optional(v.string()),
}) satisfies v.GenericSchema<unknown, UnclosedRun>;

/** `unclosed-runs.json`. An entry that is not a run is dropped, not the whole record. */
const UnclosedRecordSchema = v.object({
  runs: v.pipe(
    v.array(v.unknown()),
    v.transform((runs) =>
      runs.flatMap((r) => {
        const parsed = v.safeParse(UnclosedRunSchema, r);
        return parsed.success ? [parsed.output] : [];
      }),
    ),
  ),
});
type UnclosedRecord = v.InferOutput<typeof UnclosedRecordSchema>;

async function readRecord(file: string): Promise<UnclosedRun[]> {
  try {
    return (await parseJsonFile(file, UnclosedRecordSchema)).runs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    // A corrupt record is replaced: it is advisory, and the new entries matter more.
    if (error instanceof CorruptArtifactError) return [];
    throw error;
  }
}

/**
 * Adds `runs` to the record in `file` (one entry per tracking URI and run id, the newest wins)
 * and returns every entry it now holds. Writes nothing when `runs` is empty.
 */
export async function recordUnclosedRuns(file: string, runs: readonly UnclosedRun[]): Promise<UnclosedRun[]> {
  const existing = await readRecord(file);
  if (runs.length === 0) return existing;
  const byKey = new Map(existing.map((r) => [`${r.trackingUri}\n${r.runId}`, r]));
  for (const r of runs) byKey.set(`${r.trackingUri}\n${r.runId}`, { ...r });
  const all = [...byKey.values()];
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
  } catch (error) {
    throw asStorageError(error, path.dirname(file));
  }
  await writeAtomic(file, JSON.stringify({ runs: all } satisfies UnclosedRecord, null, 2) + "\n");
  return all;
}
