/**
 * The bench's metrics glue: a peer's top-k lists (peers.py, a real fit in the peers venv) scored by
 * lists.mjs (@ms/rank's rankingMetrics) equal a numpy reference written from Microsoft
 * Recommenders' formulas (reference.py) on a small random case, for two peers and for a list
 * changed on purpose (so an equality that held by accident would show).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evaluationOf, listMetrics, peerLists } from "./lists.mjs";
import { writeRows } from "./split.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const dir = mkdtempSync(path.join(os.tmpdir(), "ms-ranking-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let python;
let evaluation;

/** 60 users x 200 items, popularity skewed, 5-74 ratings each, a third of them test: some users have more than k relevant items, some fewer. */
function tinyCase() {
  const next = mulberry32(7);
  const rows = { train: { users: [], items: [], ratings: [] }, test: { users: [], items: [], ratings: [] } };
  for (let u = 1; u <= 60; u++) {
    const picked = new Set();
    const n = 5 + Math.floor(next() * 70);
    while (picked.size < n) picked.add(1 + Math.floor(200 * next() ** 2));
    for (const m of picked) {
      const side = next() < 0.35 ? rows.test : rows.train;
      side.users.push(u);
      side.items.push(m * 10);
      side.ratings.push(1 + Math.floor(next() * 5));
    }
  }
  const typed = (r) => ({ users: Int32Array.from(r.users), items: Int32Array.from(r.items), ratings: Float32Array.from(r.ratings) });
  return { train: typed(rows.train), test: typed(rows.test) };
}

beforeAll(() => {
  const venv = execFileSync("bash", [path.join(root, "tools/python/ensure-venv.sh"), "peers"], { encoding: "utf8" }).trim();
  python = path.join(venv, "bin/python");
  const split = tinyCase();
  writeRows(path.join(dir, "train.csv"), split.train);
  writeRows(path.join(dir, "test.csv"), split.test);
  evaluation = evaluationOf(split);
  const sizes = Array.from(evaluation.users, (u) => evaluation.testItems.get(u).length);
  // Both sides of min(k, |relevant|) in the nDCG and MAP denominators.
  expect(Math.max(...sizes)).toBeGreaterThan(10);
  expect(Math.min(...sizes)).toBeLessThan(10);
  writeFileSync(path.join(dir, "users.txt"), `${evaluation.users.join("\n")}\n`);
  const args = ["--only", "implicit-als,ease", "--k", "10", "--lambda", "20", "--max-items", "120"];
  execFileSync(
    python,
    [path.join(here, "peers.py"), path.join(dir, "train.csv"), path.join(dir, "users.txt"), path.join(dir, "lists.json"), ...args],
    {
      encoding: "utf8",
      env: { ...process.env, MS_RANKING_THREADS: "1" },
    },
  );
});

function reference(name, file = "lists.json") {
  const args = [path.join(here, "reference.py"), path.join(dir, "train.csv"), path.join(dir, "test.csv"), path.join(dir, file), name, "10"];
  return JSON.parse(execFileSync(python, args, { encoding: "utf8" }));
}

function expectSame(ts, py) {
  for (const key of ["ndcg", "precision", "recall", "map", "hitRate", "coverage", "popularityBias"])
    expect(ts[key], key).toBeCloseTo(py[key], 12);
  expect(ts.users).toBe(py.users);
}

describe("the ranking bench's metrics of a peer's lists", () => {
  it.each(["implicit-als", "ease"])("%s: lists.mjs (@ms/rank) equals the numpy reference", (name) => {
    const out = JSON.parse(readFileSync(path.join(dir, "lists.json"), "utf8"))[name];
    expect(out.users).toEqual(Array.from(evaluation.users));
    for (const items of out.items) expect(items.length).toBe(10);
    const ts = listMetrics(evaluation, peerLists(out), 10);
    expect(ts.ndcg).toBeGreaterThan(0);
    expect(ts.ndcg).toBeLessThan(1);
    expectSame(ts, reference(name));
  });

  it("a list changed on purpose changes both, and they still agree", () => {
    const all = JSON.parse(readFileSync(path.join(dir, "lists.json"), "utf8"));
    const out = all["implicit-als"];
    const before = listMetrics(evaluation, peerLists(out), 10);
    // Every user's list reversed: the same items, other ranks (nDCG and MAP move, precision does not).
    const changed = { users: out.users, items: out.items.map((l) => [...l].reverse()) };
    writeFileSync(path.join(dir, "changed.json"), JSON.stringify({ changed }));
    const after = listMetrics(evaluation, peerLists(changed), 10);
    expect(after.ndcg).not.toBeCloseTo(before.ndcg, 6);
    expect(after.precision).toBeCloseTo(before.precision, 12);
    expectSame(after, reference("changed", "changed.json"));
  });
});
