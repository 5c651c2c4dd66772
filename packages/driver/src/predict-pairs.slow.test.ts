/**
 * `ms predict --pairs` on a big file: 712,047 pairs (the count that once ended in "Maximum call
 * stack size exceeded" in formatTable) streamed as csv in file order, each equal to the ALS
 * model's own prediction, unknown movies scored by the cold-start rule on their rows; and the
 * same file as the default table (every row held, widths computed without a stack overflow).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { predict as alsPredict, readFactors } from "@ms/als";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

const PAIRS = 712_047;
let box: Sandbox;
let run: RunDoc;
let file: string;
const users = new Int32Array(PAIRS);
const movies = new Int32Array(PAIRS);

beforeAll(async () => {
  box = await sandbox("ms-driver-pairs-");
  run = await runJson([...SMALL, "-P", "keras_features=factors"], box);
  // Users and movies the ALS model knows, one pair in 1,000 with a movie no one rated.
  const factors = await readFactors(run.steps[2].outputs.factors.dir as string);
  for (let i = 0; i < PAIRS; i++) {
    users[i] = factors.userIds[(i * 7) % factors.userIds.length];
    movies[i] = i % 1000 === 999 ? 987_654_321 : factors.itemIds[(i * 13) % factors.itemIds.length];
  }
  file = path.join(box.root, "pairs.csv");
  await writeFile(file, `userId,movieId\n${Array.from(users, (u, i) => `${u},${movies[i]}`).join("\n")}\n`);
}, 300_000);
afterAll(async () => box.dispose());

describe("ms predict --pairs with 712,047 pairs", () => {
  it("streams every pair as csv, in file order, with the model's predictions and cold rows marked", async () => {
    const r = await ms(["predict", "--pairs", file, "--model", "als", "--format", "csv"], box);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe("userId,movieId,rating,cold");
    expect(lines).toHaveLength(PAIRS + 2);
    expect(lines.at(-1)).toBe("");
    const expected = await alsPredict(run.steps[2].outputs.factors.dir as string, users, movies);
    let cold = 0;
    for (let i = 0; i < PAIRS; i += 997) {
      const [u, m, rating, side] = lines[i + 1].split(",");
      expect([Number(u), Number(m)]).toEqual([users[i], movies[i]]);
      if (movies[i] === 987_654_321) {
        expect(side).toBe("movie");
        cold++;
      } else {
        expect(side).toBe("");
        expect(Number(rating)).toBeCloseTo(expected[i], 4);
      }
    }
    expect(lines.filter((l) => l.endsWith(",movie"))).toHaveLength(Math.floor(PAIRS / 1000));
    expect(cold).toBeGreaterThan(0);
    expect(r.stderr).toContain(`predicted ${PAIRS} pairs (${Math.floor(PAIRS / 1000)} by the cold-start rule)`);
  });

  it("prints the same pairs as the default table", async () => {
    const r = await ms(["predict", "--pairs", file, "--model", "als"], box);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).not.toContain("Maximum call stack");
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^user\s+movie\s+rating\s+cold start$/);
    // Header, rule, the rows, a blank line, the model line.
    expect(lines).toHaveLength(PAIRS + 4);
    expect(lines.at(-1)).toBe(`als model of run ${run.runId}`);
  });
});
