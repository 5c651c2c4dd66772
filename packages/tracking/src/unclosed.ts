/**
 * A local record of runs that could not be ended in their tracking store (typically because the
 * server went away mid-run): a small JSON file that accumulates across driver runs, so somebody
 * can later end or delete those runs, which the server still shows as RUNNING.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { asStorageError } from "@ms/contracts";
import { writeAtomic } from "./file-store.js";
import type { UnclosedRun } from "./types.js";

export const UNCLOSED_RUNS_FILE = "unclosed-runs.json";

interface UnclosedRecord {
  runs: UnclosedRun[];
}

async function readRecord(file: string): Promise<UnclosedRun[]> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  try {
    const runs = (JSON.parse(text) as Partial<UnclosedRecord>).runs;
    return Array.isArray(runs) ? runs.filter((r) => r && typeof r.runId === "string" && typeof r.trackingUri === "string") : [];
  } catch {
    return []; // an unreadable record is replaced: it is advisory, and the new entries matter more
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
