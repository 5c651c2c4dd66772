/**
 * Running the Python side of an interop check: a script from tools/interop/python in the venv,
 * whose last stdout line is one JSON document. Spark and pyarrow print warnings around it, and a
 * failure must show Python's own traceback, so stderr is kept for the error.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const scripts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../python");

export function runPython<T>(venv: string, script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      path.join(venv, "bin/python"),
      [path.join(scripts, script), ...args],
      { maxBuffer: 256 * 2 ** 20 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${script} failed: ${error.message}\n${stderr.slice(-4000)}`));
        const last = stdout.trim().split("\n").pop() ?? "";
        try {
          resolve(JSON.parse(last) as T);
        } catch {
          reject(new Error(`${script} printed no JSON document:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
        }
      },
    );
  });
}
