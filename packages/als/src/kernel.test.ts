/**
 * The ALS kernel against independent references: ml-matrix for the linear solves, closed forms
 * for a rank-1 sweep, brute-force active sets for NNLS, and the generic loop for the generated
 * accumulation (identical bits).
 */
import { Matrix, solve } from "ml-matrix";
import { describe, expect, it } from "vitest";
import { accumulateGeneric, accumulateGenerated, choleskySolve, makeScratch, nnlsRefine, SIDE_ITEMS, SIDE_USERS } from "./kernel.js";
import { fitProblem, indexIds, prepareProblem } from "./model.js";
import { inProcessRunner } from "./pool.js";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomSpd(k: number, next: () => number): Float64Array {
  const B = Matrix.rand(k, k, { random: next });
  const M = B.mmul(B.transpose()).add(Matrix.eye(k, k).mul(0.1));
  return Float64Array.from(M.to1DArray());
}

describe("choleskySolve", () => {
  it.each([1, 2, 5, 12, 20])("matches ml-matrix's solve at rank %i", (k) => {
    const next = lcg(k);
    for (let trial = 0; trial < 20; trial++) {
      const A = randomSpd(k, next);
      const b = Float64Array.from({ length: k }, () => next() * 2 - 1);
      const x = new Float64Array(k);
      choleskySolve(A.slice(), b, x, k);
      const ref = solve(
        new Matrix([...Array(k).keys()].map((i) => Array.from(A.subarray(i * k, i * k + k)))),
        Matrix.columnVector(Array.from(b)),
      ).to1DArray();
      for (let i = 0; i < k; i++) expect(x[i]).toBeCloseTo(ref[i], 8);
    }
  });
});

describe("accumulation", () => {
  it.each([1, 3, 12, 17])("the generated rank-%i kernel gives the generic loop's exact bits", (k) => {
    const next = lcg(100 + k);
    const rows = 50;
    const Y = Float32Array.from({ length: rows * k }, () => next() * 2 - 1);
    const col = Int32Array.from({ length: 400 }, () => Math.floor(next() * rows));
    const val = Float32Array.from({ length: 400 }, () => 0.5 + Math.floor(next() * 10) / 2);
    const G1 = new Float64Array(k * k);
    const G2 = new Float64Array(k * k);
    const b1 = new Float64Array(k);
    const b2 = new Float64Array(k);
    accumulateGeneric(k)(col, val, Y, 17, 391, G1, b1);
    accumulateGenerated(k)(col, val, Y, 17, 391, G2, b2);
    expect(G2).toEqual(G1);
    expect(b2).toEqual(b1);
    // And the accumulation is what it claims: Y_S' Y_S and Y_S' r.
    const ys = new Matrix(Array.from({ length: 391 - 17 }, (_, p) => Array.from(Y.subarray(col[17 + p] * k, col[17 + p] * k + k))));
    const G = ys.transpose().mmul(ys);
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) expect(G1[i * k + j]).toBeCloseTo(G.get(i, j), 9);
  });
});

describe("nnlsRefine", () => {
  /** Exact NNLS by trying every active set (fine for rank 4). */
  function bruteForce(M: Float64Array, b: Float64Array, k: number): Float64Array {
    let best = new Float64Array(k);
    let bestObj = 0;
    for (let set = 1; set < 1 << k; set++) {
      const idx = [...Array(k).keys()].filter((i) => set & (1 << i));
      const sub = new Matrix(idx.map((i) => idx.map((j) => M[i * k + j])));
      const sol = solve(sub, Matrix.columnVector(idx.map((i) => b[i]))).to1DArray();
      if (sol.some((v) => v < 0)) continue;
      const x = new Float64Array(k);
      idx.forEach((i, n) => (x[i] = sol[n]));
      let obj = 0;
      for (let i = 0; i < k; i++) {
        let mx = 0;
        for (let j = 0; j < k; j++) mx += M[i * k + j] * x[j];
        obj += 0.5 * x[i] * mx - b[i] * x[i];
      }
      if (obj < bestObj) {
        bestObj = obj;
        best = x;
      }
    }
    return best;
  }

  it("finds the exact non-negative least-squares solution", () => {
    const k = 4;
    const next = lcg(7);
    let constrained = 0;
    for (let trial = 0; trial < 50; trial++) {
      const M = randomSpd(k, next);
      const b = Float64Array.from({ length: k }, () => next() * 2 - 1);
      const x = new Float64Array(k);
      choleskySolve(M.slice(), b, x, k);
      if (x.some((v) => v < 0)) constrained++;
      nnlsRefine(M, b, x, k);
      const ref = bruteForce(M, b, k);
      for (let i = 0; i < k; i++) expect(x[i]).toBeCloseTo(ref[i], 6);
    }
    expect(constrained).toBeGreaterThan(10);
  });
});

describe("one sweep, by hand", () => {
  // Three users, three movies, every rating in training (mask all ones).
  const userIds = Int32Array.from([10, 10, 20, 20, 30, 30, 30]);
  const movieIds = Int32Array.from([1, 2, 1, 3, 1, 2, 3]);
  const ratings = Float32Array.from([4, 3, 5, 1, 2, 4, 5]);
  const mask = new Uint8Array(7).fill(1);

  it("rank 1: movie then user updates equal the closed form y = sum r x / (sum x^2 + lambda n)", async () => {
    const lambda = 0.3;
    const problem = prepareProblem({ userIds, movieIds, ratings }, mask, {
      rank: 1,
      maxIter: 1,
      regParam: lambda,
      nonnegative: false,
      seed: 5,
    });
    const { state } = problem;
    const x0 = Float64Array.from(state.userFactors);
    expect(x0.every((v) => Math.abs(v) === 1)).toBe(true); // unit-norm init at rank 1
    const runner = inProcessRunner(state);
    await runner.run(SIDE_ITEMS);
    const expectedY = [1, 2, 3].map((m) => {
      let num = 0;
      let den = 0;
      let n = 0;
      for (let i = 0; i < 7; i++) {
        if (movieIds[i] !== m) continue;
        const x = x0[problem.users.lookup(userIds[i])];
        num += ratings[i] * x;
        den += x * x;
        n++;
      }
      return num / (den + lambda * n);
    });
    expectedY.forEach((y, m) => expect(state.itemFactors[m]).toBeCloseTo(y, 6));
    await runner.run(SIDE_USERS);
    [10, 20, 30].forEach((u, ui) => {
      let num = 0;
      let den = 0;
      let n = 0;
      for (let i = 0; i < 7; i++) {
        if (userIds[i] !== u) continue;
        const y = state.itemFactors[problem.items.lookup(movieIds[i])];
        num += ratings[i] * y;
        den += y * y;
        n++;
      }
      expect(state.userFactors[ui]).toBeCloseTo(num / (den + lambda * n), 6);
    });
  });

  it("rank 2: each row solves (Y'Y + lambda n I) x = Y'r (checked with ml-matrix), and the loss is the objective", async () => {
    const lambda = 0.1;
    const k = 2;
    const problem = prepareProblem({ userIds, movieIds, ratings }, mask, {
      rank: k,
      maxIter: 1,
      regParam: lambda,
      nonnegative: false,
      seed: 9,
    });
    const { state } = problem;
    const X0 = Float64Array.from(state.userFactors);
    const losses = await fitProblem(problem, 1, inProcessRunner(state, makeScratch(k)));
    const rowsOf = (key: Int32Array, id: number) => [...key.keys()].filter((i) => key[i] === id);
    for (const [mi, m] of [1, 2, 3].entries()) {
      const rows = rowsOf(movieIds, m);
      const Y = new Matrix(
        rows.map((i) => Array.from(X0.subarray(problem.users.lookup(userIds[i]) * k, problem.users.lookup(userIds[i]) * k + k))),
      );
      const A = Y.transpose()
        .mmul(Y)
        .add(Matrix.eye(k, k).mul(lambda * rows.length));
      const sol = solve(A, Y.transpose().mmul(Matrix.columnVector(rows.map((i) => ratings[i])))).to1DArray();
      expect(state.itemFactors[mi * k]).toBeCloseTo(sol[0], 6);
      expect(state.itemFactors[mi * k + 1]).toBeCloseTo(sol[1], 6);
    }
    let objective = 0;
    for (let i = 0; i < 7; i++) {
      const u = problem.users.lookup(userIds[i]);
      const m = problem.items.lookup(movieIds[i]);
      const e =
        ratings[i] - (state.userFactors[u * k] * state.itemFactors[m * k] + state.userFactors[u * k + 1] * state.itemFactors[m * k + 1]);
      objective += e * e;
    }
    for (const [ids, F, index] of [
      [userIds, state.userFactors, problem.users],
      [movieIds, state.itemFactors, problem.items],
    ] as const) {
      for (const id of new Set(ids)) {
        const r = index.lookup(id);
        objective += lambda * rowsOf(ids, id).length * (F[r * k] ** 2 + F[r * k + 1] ** 2);
      }
    }
    expect(losses[0]).toBeCloseTo(objective / 7, 9);
  });
});

describe("indexIds", () => {
  it("gives the same dense ascending index by table and by binary search", () => {
    const small = Int32Array.from([7, 3, 3, 9, -2, 7]);
    const wide = Int32Array.from([7, 3, 3, 2_000_000_000, -2_000_000_000, 7]);
    const mask = Uint8Array.from([1, 1, 0, 1, 1, 1]);
    const a = indexIds(small, mask);
    const b = indexIds(wide, mask);
    expect(Array.from(a.ids)).toEqual([-2, 3, 7, 9]);
    expect(Array.from(b.ids)).toEqual([-2_000_000_000, 3, 7, 2_000_000_000]);
    expect([-2, 3, 7, 9, 4, 100].map(a.lookup)).toEqual([0, 1, 2, 3, -1, -1]);
    expect([-2_000_000_000, 3, 7, 2_000_000_000, 4].map(b.lookup)).toEqual([0, 1, 2, 3, -1]);
    expect(indexIds(small, new Uint8Array(6)).ids.length).toBe(0);
  });
});
