/**
 * Sweeps stop when the step's signal aborts, even in the middle of a half-sweep: the calling
 * thread never computes a whole sweep without letting its event loop run (a timer here, a signal
 * handler in a bin), and the abort flag stops the sweep threads between rows.
 */
import { InterruptedError } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { SIDE_ITEMS } from "./kernel-types.js";
import { smallRatings } from "./__tests__/fixtures.js";
import { prepareProblem } from "./model.js";
import { inProcessRunner, threadRunner, workerScript } from "./pool.js";

/** A problem whose item half-sweep takes seconds (rank 200, generic JS kernel). */
function slowProblem() {
  const r = smallRatings(300, 300);
  const input = { userIds: Int32Array.from(r.userIds), movieIds: Int32Array.from(r.movieIds), ratings: Float32Array.from(r.ratings) };
  return prepareProblem(input, new Uint8Array(r.ratings.length).fill(1), {
    rank: 200,
    maxIter: 1,
    regParam: 0.1,
    nonnegative: false,
    seed: 1,
  });
}

/** Rows of the item factors that the sweep overwrote (every initial vector has unit length). */
function solvedRows(itemFactors: Float32Array, rows: number, rank: number): number {
  let solved = 0;
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let j = 0; j < rank; j++) norm += itemFactors[r * rank + j] ** 2;
    if (Math.abs(norm - 1) > 1e-4) solved++;
  }
  return solved;
}

describe("an abort during a half-sweep", () => {
  it("stops the in-process runner part-way with InterruptedError", async () => {
    const problem = slowProblem();
    const controller = new AbortController();
    const runner = inProcessRunner(problem.state, undefined, controller.signal);
    setTimeout(() => controller.abort(), 30);
    await expect(runner.run(SIDE_ITEMS)).rejects.toBeInstanceOf(InterruptedError);
    await runner.close();
    const rows = problem.items.ids.length;
    const solved = solvedRows(problem.state.itemFactors, rows, 200);
    expect(solved).toBeGreaterThan(0);
    expect(solved).toBeLessThan(rows);
  });

  it("stops the worker threads part-way with the signal's reason, and the runner closes", async () => {
    expect(workerScript()).toBeDefined();
    const problem = slowProblem();
    const controller = new AbortController();
    const runner = await threadRunner(problem.state, 2, controller.signal);
    if (!runner) throw new Error("no worker script");
    const reason = new InterruptedError("stopped by the test");
    setTimeout(() => controller.abort(reason), 300);
    await expect(runner.run(SIDE_ITEMS)).rejects.toBe(reason);
    await runner.close();
    expect(Atomics.load(problem.state.abort, 0)).toBe(1);
    expect(solvedRows(problem.state.itemFactors, problem.items.ids.length, 200)).toBeLessThan(problem.items.ids.length);
    await expect(runner.run(SIDE_ITEMS)).rejects.toBe(reason);
  });
});
