/**
 * Shared pieces of the benchmarks: timing a whole child process with its peak RSS, cached
 * generated data under tools/bench/work, and Markdown/terminal tables. Every figure is compared
 * with a baseline measured in the same run, since these machines are shared and noisy.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SYNTHETIC_KINDS } from "@ms/etl";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const WORK = process.env.MS_BENCH_WORK ?? path.join(ROOT, "tools/bench/work");
/** The model benchmarks' datasets (quality, ranking, rank): ml-latest-small and every synthetic kind etl makes. */
export const BENCH_DATASETS = ["ml-latest-small", ...SYNTHETIC_KINDS];

/** A comma list from the environment: unset or empty means `all`, "0" means none. */
export function envList(value, all) {
  return value === undefined || value === "" ? all : value === "0" ? [] : value.split(",").map((s) => s.trim());
}

export const ML_SMALL = process.env.MS_MOVIELENS_SMALL ?? path.resolve(ROOT, "../shared/movielens/ml-latest-small");
mkdirSync(WORK, { recursive: true });

/** Runs a command under /usr/bin/time; returns wall seconds, peak RSS in MiB, and stdout. */
export function timed(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const stats = path.join(WORK, `.time-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const started = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-f", "%M", "-o", stats, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], ...options });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const rssKb = Number(readFileSync(stats, "utf8").trim().split("\n").pop());
      if (code !== 0) reject(new Error(`${cmd} ${args.join(" ")} exited ${code}\n${stderr.slice(-2000)}`));
      else resolve({ seconds, rssMiB: rssKb / 1024, stdout, stderr });
    });
  });
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function fmt(n, digits = 2) {
  if (typeof n !== "number") return String(n);
  if (Number.isInteger(n) && Math.abs(n) >= 1000) return n.toLocaleString("en-US");
  return n.toFixed(digits);
}

/** A Markdown table that also reads well in a terminal. */
export function table(header, rows) {
  const cells = [header, ...rows].map((r) => r.map((c) => fmt(c)));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(cells[0]), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...cells.slice(1).map(line)].join("\n");
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  return `${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export function gitCommit() {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/** Writes `tools/bench/results/YYYY-MM-DD-<name>.md` (the newest sorts last). */
export function writeResult(name, markdown) {
  const dir = path.join(ROOT, "tools/bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().slice(0, 10)}-${name}.md`);
  writeFileSync(file, markdown);
  return file;
}

/**
 * The synthetic MovieLens-shaped ratings CSV of `rows` rows (seed 42), generated once into
 * WORK/driver and reused by every bench that runs the pipeline on it.
 */
export async function syntheticRatingsCsv(rows) {
  const file = path.join(WORK, "driver", `synthetic-${rows}.csv`);
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    const { writeSyntheticRatings } = await import("@ms/etl");
    process.stderr.write(`generating ${rows.toLocaleString("en-US")} synthetic ratings into ${file}\n`);
    writeSyntheticRatings(file, { rows, seed: 42 });
  }
  return file;
}

/** `base/name` emptied (what an earlier run left there is removed) and created. */
export function freshDir(base, name) {
  const dir = path.join(base, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

// The one .npy writer, shared with the tests that hand arrays to TensorFlow.
export { writeNpy } from "@ms/tracking/testing";
export { existsSync, path };
