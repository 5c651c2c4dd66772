/**
 * The built bins as a user runs them: `--json` gives exactly one JSON document on stdout, logs and
 * errors go to stderr, negative numbers work in both flag spellings, exit codes follow the table.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "@ms/contracts";
import { writeSyntheticRatings } from "./synthetic.js";
import { SMALL_CSV, tempDir, writeText } from "./__tests__/helpers.js";

const run = promisify(execFile);
const dist = path.resolve(__dirname, "../dist");

async function bin(name: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(dist, name), ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("ms-etl bin", () => {
  it("prints exactly one JSON document on stdout with --json, logs on stderr", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", SMALL_CSV);
    for (const limit of [["--max-row-limit", "-1"], ["--max-row-limit=-1"]]) {
      const out = path.join(dir, `out${limit.length}`);
      const r = await bin("bin.js", ["--ratings-csv", csv, "--out", out, ...limit, "--json"]);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.outputs.ratings).toMatchObject({ kind: "ratings", dir: out, files: [path.join(out, "ratings.parquet")] });
      expect(path.isAbsolute(doc.outputs.ratings.files[0])).toBe(true);
      expect(doc.metrics.rows).toBe(5);
      const logs = r.stderr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(logs.some((l) => l.msg === "etl: done")).toBe(true);
    }
  });

  it("honours --log-level and LOG_LEVEL", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", SMALL_CSV);
    const quiet = await bin("bin.js", ["--ratings-csv", csv, "--out", path.join(dir, "a"), "--log-level", "warn"]);
    expect(quiet.stderr).toBe("");
    expect(quiet.stdout).toMatch(/rows\s+5/);
    const viaEnv = await bin("bin.js", ["--ratings-csv", csv, "--out", path.join(dir, "b")], { LOG_LEVEL: "error" });
    expect(viaEnv.stderr).toBe("");
    const badLevel = await bin("bin.js", ["--ratings-csv", csv, "--out", path.join(dir, "c"), "--log-level", "loud"]);
    expect(badLevel.code).toBe(EXIT_CODES.BAD_PARAMETER);
    expect(badLevel.stderr).toMatch(/--log-level/);
  });

  it("fails bad input with the file and line, exit code 3, and no output", async () => {
    const dir = await tempDir();
    const csv = await writeText(dir, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,3,9,4\n");
    const out = path.join(dir, "out");
    const r = await bin("bin.js", ["--ratings-csv", csv, "--out", out, "--json"]);
    expect(r.code).toBe(EXIT_CODES.BAD_INPUT);
    expect(r.stderr).toContain(`${csv}:3: rating 9 is outside [0.5, 5]`);
    expect(JSON.parse(r.stdout).error.code).toBe("BAD_INPUT");
    expect(existsSync(out)).toBe(false);
  });

  it("names missing and unknown flags, and has --help", async () => {
    const missing = await bin("bin.js", ["--ratings-csv", "x"]);
    expect(missing.code).toBe(EXIT_CODES.BAD_PARAMETER);
    expect(missing.stderr).toMatch(/--out: is required/);
    const unknown = await bin("bin.js", ["--max-rows", "x"]);
    expect(unknown.code).toBe(EXIT_CODES.BAD_PARAMETER);
    expect(unknown.stderr).toMatch(/Unknown option '--max-rows'/);
    const near = await bin("bin.js", ["--dedupe", "latest"]);
    expect(near.stderr).toMatch(/did you mean --etl-dedupe\?/);
    const notNumber = await bin("bin.js", ["--ratings-csv", "x", "--out", "y", "--max-row-limit", "many"]);
    expect(notNumber.stderr).toMatch(/parameter max_row_limit: "many" is not a number/);
    const zero = await bin("bin.js", ["--ratings-csv", "x", "--out", "y", "--max-row-limit", "0"]);
    expect(zero.code).toBe(EXIT_CODES.BAD_PARAMETER);
    const help = await bin("bin.js", ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: ms-etl --out DIR/);
    for (const flag of ["--ratings-csv", "--dataset", "--max-row-limit", "--etl-keep-timestamp", "--etl-dedupe", "--etl-format"])
      expect(help.stdout).toContain(flag);
    expect(help.stdout).toMatch(/Exit codes:/);
    const missingFile = await bin("bin.js", ["--ratings-csv", "/nonexistent/ratings.csv", "--out", "/tmp/never"]);
    expect(missingFile.code).toBe(EXIT_CODES.BAD_INPUT);
    expect(missingFile.stderr).toMatch(/\/nonexistent\/ratings\.csv:1?:? ?no such file|\/nonexistent\/ratings\.csv: no such file/);
  });

  it("refuses a directory or a FIFO as the ratings file with exit code 3", async () => {
    const dir = await tempDir();
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    for (const [input, words] of [
      [dir, "is a directory"],
      [fifo, "is not a regular file"],
    ]) {
      // A hang would end only at the test timeout; the bin must answer by itself.
      const r = await bin("bin.js", ["--ratings-csv", input, "--out", path.join(dir, "out"), "--json"]);
      expect(r.code).toBe(EXIT_CODES.BAD_INPUT);
      expect(r.stderr).toContain(`${input}: ${words}`);
      expect(JSON.parse(r.stdout).error.code).toBe("BAD_INPUT");
    }
  });

  it("removes its staging directory when interrupted, and leaves none behind a later success", async () => {
    const dir = await tempDir();
    const csv = path.join(dir, "ratings.csv");
    // Large enough that the conversion is still running when the signal arrives.
    writeSyntheticRatings(csv, { rows: 300_000, seed: 3 });
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const child = spawn(
        process.execPath,
        [path.join(dist, "bin.js"), "--ratings-csv", csv, "--out", path.join(dir, "out"), "--max-row-limit", "-1", "--log-level", "error"],
        { stdio: "ignore" },
      );
      let done = false;
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on("exit", (_code, sig) => {
          done = true;
          resolve(sig);
        }),
      );
      while (!done && !(await readdir(dir)).some((f) => f.startsWith(".out.tmp-"))) await new Promise((r) => setTimeout(r, 5));
      // A conversion that ended before its staging directory was seen says so, rather than spinning to the test timeout.
      expect(done, "ms-etl finished before its staging directory could be seen").toBe(false);
      child.kill(signal);
      // It dies by the signal, as a process without handlers does (a shell reports 130 for SIGINT).
      expect(await exited).toBe(signal);
      expect(await readdir(dir)).toEqual(["ratings.csv"]);
    }
    const ok = await bin("bin.js", ["--ratings-csv", csv, "--out", path.join(dir, "out"), "--max-row-limit", "10"]);
    expect(ok.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(["out", "ratings.csv"]);
  }, 120_000);
});

describe("ms-download bin", () => {
  it("generates synthetic data offline and prints where it is", async () => {
    const cache = await tempDir();
    const r = await bin("download-bin.js", ["--dataset", "synthetic", "--rows", "2000", "--cache-dir", cache, "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.source).toBe("synthetic");
    expect(doc.outputs.ratings.path.startsWith(cache)).toBe(true);
    const help = await bin("download-bin.js", ["-h"]);
    expect(help.stdout).toMatch(/ml-latest-small, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, synthetic/);
    const bad = await bin("download-bin.js", ["--dataset", "nope", "--cache-dir", cache]);
    expect(bad.code).toBe(EXIT_CODES.BAD_PARAMETER);
    expect(bad.stderr).toMatch(/parameter dataset: unknown dataset "nope"/);
  });

  it("names --url when it is not an http(s) URL", async () => {
    const cache = await tempDir();
    for (const url of ["not a url", "ftp://example.org/ml.zip"]) {
      const r = await bin("download-bin.js", ["--url", url, "--cache-dir", cache, "--json"]);
      expect(r.code).toBe(EXIT_CODES.BAD_PARAMETER);
      expect(r.stderr).toMatch(/parameter --url: /);
      expect(r.stderr).toContain(JSON.stringify(url));
    }
    const deadline = await bin("download-bin.js", ["--deadline", "0", "--cache-dir", cache]);
    expect(deadline.code).toBe(EXIT_CODES.BAD_PARAMETER);
    expect(deadline.stderr).toMatch(/--deadline/);
  });
});
