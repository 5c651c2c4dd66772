/**
 * Whether a process that left a file behind (a lock, a staging directory, a partial download) is
 * still running. One rule for every package, so a leftover is judged alike wherever it is found.
 */
import { readFileSync } from "node:fs";

/** Same host only. EPERM means alive but not ours; a zombie counts as gone: it will never clean up. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return true;
  }
}
