/** The SPD inverse against its definition (G P = I) and EASE's B against the closed form computed plainly. */
import { mulberry32 } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { fitEase, gramMatrix } from "./ease.js";
import { inverseAt, invertSpd, NotPositiveDefiniteError } from "./inverse.js";

/** A random SPD matrix: A^T A + I over a random m x m A, full storage. */
function randomSpd(m: number, seed: number): Float64Array {
  const random = mulberry32(seed);
  const a = Float64Array.from({ length: m * m }, () => random() - 0.5);
  const g = new Float64Array(m * m);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++) {
      let s = i === j ? 1 : 0;
      for (let k = 0; k < m; k++) s += a[k * m + i] * a[k * m + j];
      g[i * m + j] = s;
    }
  return g;
}

/** Gauss-Jordan with partial pivoting on a copy: the textbook inverse, as the reference. */
function gaussJordan(g: Float64Array, m: number): Float64Array {
  const a = Float64Array.from(g);
  const inv = new Float64Array(m * m);
  for (let i = 0; i < m; i++) inv[i * m + i] = 1;
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(a[r * m + c]) > Math.abs(a[p * m + c])) p = r;
    for (let j = 0; j < m; j++) {
      [a[c * m + j], a[p * m + j]] = [a[p * m + j], a[c * m + j]];
      [inv[c * m + j], inv[p * m + j]] = [inv[p * m + j], inv[c * m + j]];
    }
    const d = a[c * m + c];
    for (let j = 0; j < m; j++) {
      a[c * m + j] /= d;
      inv[c * m + j] /= d;
    }
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = a[r * m + c];
      for (let j = 0; j < m; j++) {
        a[r * m + j] -= f * a[c * m + j];
        inv[r * m + j] -= f * inv[c * m + j];
      }
    }
  }
  return inv;
}

describe("invertSpd", () => {
  it("inverts SPD matrices of sizes around its blocking of four (G P = I)", () => {
    for (const m of [1, 2, 3, 4, 5, 7, 8, 9, 13, 32]) {
      const g = randomSpd(m, m);
      const work = Float64Array.from(g);
      const diag = invertSpd(work, m);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let k = 0; k < m; k++) s += g[i * m + k] * inverseAt(work, m, diag, k, j);
          expect(s).toBeCloseTo(i === j ? 1 : 0, 9);
        }
    }
  });

  it("reads only the lower triangle and refuses a matrix that is not positive definite", () => {
    const m = 6;
    const g = randomSpd(m, 3);
    const lower = Float64Array.from(g);
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) lower[i * m + j] = 99;
    const a = Float64Array.from(g);
    const da = invertSpd(a, m);
    const db = invertSpd(lower, m);
    for (let i = 0; i < m; i++)
      for (let j = 0; j <= i; j++) expect(inverseAt(lower, m, db, i, j)).toBeCloseTo(inverseAt(a, m, da, i, j), 12);
    const singular = new Float64Array([1, 1, 1, 1]);
    expect(() => invertSpd(singular, 2)).toThrow(NotPositiveDefiniteError);
  });
});

describe("EASE", () => {
  it("gives B = -P / diag(P) with a zero diagonal, as the closed form computed plainly", () => {
    const random = mulberry32(11);
    const users = 40;
    const m = 9;
    const lambda = 3;
    const rows: number[][] = Array.from({ length: users }, () => [...Array(m).keys()].filter(() => random() < 0.35));
    const offsets = Int32Array.from([0, ...rows.map((_, u) => rows.slice(0, u + 1).reduce((s, r) => s + r.length, 0))]);
    const h = { userIds: Int32Array.from(rows.keys()), offsets, items: Int32Array.from(rows.flat()) };
    const local = Int32Array.from({ length: m }, (_, i) => i);
    // The plain way: X dense, G = X^T X + λI, P by Gauss-Jordan, B = -P / diag(P).
    const g = new Float64Array(m * m);
    for (const r of rows) for (const i of r) for (const j of r) g[i * m + j] += 1;
    for (let i = 0; i < m; i++) g[i * m + i] += lambda;
    const p = gaussJordan(g, m);
    const fit = fitEase(h, local, m, lambda, 0, local);
    for (let i = 0; i < m; i++) {
      const { offsets: o, cols, values } = fit.rows;
      expect(o[i + 1] - o[i]).toBe(m - 1);
      for (let e = o[i]; e < o[i + 1]; e++) {
        expect(cols[e]).not.toBe(i);
        expect(values[e]).toBeCloseTo(-p[i * m + cols[e]] / p[cols[e] * m + cols[e]], 6);
      }
    }
    // Pruned to 3 per row: each row keeps its three entries of largest magnitude, columns ascending.
    const pruned = fitEase(h, local, m, lambda, 3, local);
    for (let i = 0; i < m; i++) {
      const all = [...Array(m).keys()].filter((j) => j !== i).map((j) => ({ j, b: Math.abs(p[i * m + j] / p[j * m + j]) }));
      const want = all
        .sort((x, y) => y.b - x.b || x.j - y.j)
        .slice(0, 3)
        .map((x) => x.j)
        .sort((x, y) => x - y);
      expect([...pruned.rows.cols.subarray(pruned.rows.offsets[i], pruned.rows.offsets[i + 1])]).toEqual(want);
    }
  });

  it("counts co-occurrences over the capped items only", () => {
    const h = { userIds: Int32Array.of(1, 2), offsets: Int32Array.of(0, 3, 5), items: Int32Array.of(0, 1, 2, 1, 2) };
    // Item 0 is outside the cap; items 1 and 2 are the model's 1 and 0.
    const g = gramMatrix(h, Int32Array.of(-1, 1, 0), 2);
    expect([...g]).toEqual([2, 0, 2, 2]);
  });
});
