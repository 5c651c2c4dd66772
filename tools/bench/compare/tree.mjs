/**
 * Whole-process-tree measurements for the comparison benchmark. /usr/bin/time reports the peak RSS
 * of the process it starts only, and spark-submit's memory lives in a JVM and a Python driver
 * below it; so a child is spawned directly and its descendants are found by polling /proc every
 * 100 ms. The reported peak is the sum over every process ever seen in the tree of its own VmHWM
 * (kernel-tracked peak RSS, last value read): an upper bound on the tree's simultaneous RSS, exact
 * for a single process, and within a few MiB for spark-submit, whose JVM dominates.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

function ppidOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces or parentheses: fields start after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
}

function hwmKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) : 0;
  } catch {
    return -1;
  }
}

/** The pids below `root` (itself included), from one scan of /proc. */
function descendants(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const pid = Number(name);
    const ppid = ppidOf(pid);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const c of children.get(out[i]) ?? []) out.push(c);
  return out;
}

/**
 * Runs `cmd args`; resolves { seconds, peakMiB, processes, stdout, stderr } or rejects with the
 * stderr tail when it exits non-zero.
 */
export function runTree(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    const peaks = new Map();
    let stdout = "";
    let stderr = "";
    const sample = () => {
      for (const pid of descendants(child.pid)) {
        const kb = hwmKiB(pid);
        if (kb >= 0) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, kb));
      }
    };
    const timer = setInterval(sample, 100);
    sample();
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const peakMiB = [...peaks.values()].reduce((a, b) => a + b, 0) / 1024;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${stderr.slice(-3000)}`));
      else resolve({ seconds, peakMiB, processes: peaks.size, stdout, stderr });
    });
  });
}

/** The last line of `text` that parses as a JSON object (Spark and TensorFlow print around it). */
export function lastJson(text) {
  const lines = text.trim().split("\n").reverse();
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      return JSON.parse(line);
    } catch {
      // not the document
    }
  }
  throw new Error(`no JSON document in output:\n${text.slice(-2000)}`);
}
