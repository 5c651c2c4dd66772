/**
 * The batch paths of `ms recommend` and `ms predict` through the built bin, on a small run of a
 * ratings file with a movies file beside it (titles holding commas and quotes): `--users all` and
 * `--users FILE` as csv (RFC 4180 quoting read back) and jsonl, each user's list equal to the
 * one-user answer; the default model, the run's EASE ranker, with the rated movies behind each
 * item (its own `recommend`'s lists); an unknown user reported on its row and on stderr, exit 9; `--min-ratings`,
 * `--no-exclude-seen` and popularity; EPIPE (`| head -1`) ending quietly; `--pairs` streamed with
 * cold pairs scored by the cold-start rule the steps use.
 */
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ColdStartRule, EXIT_CODES, mulberry32, splitMaskOf } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { openRanker } from "@ms/rank";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, SMALL, ms, runJson, sandbox, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let run: RunDoc;
/** The movies each user rated in the ratings file. */
const rated = new Map<number, Set<number>>();
const TITLES: Record<number, string> = { 1: "American President, The (1995)", 2: 'He said "hi", twice (2001)', 3: "Plain (1990)" };

/** 60 users x 80 movies, about 30 ratings each, deterministic. */
async function writeRelease(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const next = mulberry32(11);
  const lines = ["userId,movieId,rating,timestamp"];
  for (let u = 1; u <= 60; u++) {
    const mine = new Set<number>();
    while (mine.size < 30) mine.add(1 + Math.floor(next() * next() * 80));
    for (const m of mine) lines.push(`${u},${m},${1 + Math.floor(next() * 9) / 2},${1_000_000 + u * 100 + m}`);
    rated.set(u, mine);
  }
  const file = path.join(dir, "ratings.csv");
  await writeFile(file, `${lines.join("\n")}\n`);
  const movies = Array.from({ length: 80 }, (_, i) => i + 1).map((m) => {
    const title = TITLES[m] ?? `Movie ${m} (2000)`;
    return `${m},${/[",]/.test(title) ? `"${title.replaceAll('"', '""')}"` : title},Drama`;
  });
  await writeFile(path.join(dir, "movies.csv"), `movieId,title,genres\n${movies.join("\n")}\n`);
  return file;
}

beforeAll(async () => {
  box = await sandbox("ms-driver-batch-");
  const ratings = await writeRelease(path.join(box.root, "release"));
  run = await runJson(["--ratings-csv", ratings, ...SMALL.slice(4), "-P", "keras_features=factors"], box);
});
afterAll(async () => box.dispose());

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === "," || c === "\n") {
      row.push(field);
      field = "";
      if (c === "\n") {
        rows.push(row);
        row = [];
      }
    } else field += c;
  }
  return rows;
}

interface Item {
  movieId: number;
  score: number;
  title: string | null;
}

async function one(user: number, model: string, extra: string[] = []): Promise<Item[]> {
  const r = await ms(["recommend", "--user", String(user), "--model", model, "--json", ...extra], box);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { recommendations: Item[] }).recommendations;
}

describe("ms recommend --users", () => {
  it("all, as csv: every training user's top N, equal to the one-user answers, titles quoted as RFC 4180 says", async () => {
    const r = await ms(["recommend", "--users", "all", "--model", "als", "--top", "5"], box);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`with the als model of run ${run.runId}`);
    const [header, ...rows] = parseCsv(r.stdout);
    expect(header).toEqual(["userId", "rank", "movieId", "score", "title"]);
    const users = [...new Set(rows.map((x) => Number(x[0])))];
    expect(users.length).toBeGreaterThan(50);
    expect(rows).toHaveLength(users.length * 5);
    for (const user of [users[0], users[17], users.at(-1) as number]) {
      const mine = rows.filter((x) => Number(x[0]) === user);
      const expected = await one(user, "als", ["--top", "5"]);
      expect(mine.map((x) => [Number(x[1]), Number(x[2]), Number(x[3]), x[4]])).toEqual(
        expected.map((e, i) => [i + 1, e.movieId, e.score, e.title ?? ""]),
      );
    }
    for (const x of rows) expect(rated.get(Number(x[0]))?.has(Number(x[2]))).toBe(false);
    // The quoted titles come back whole wherever they were listed.
    for (const x of rows) expect(x[4]).toBe(TITLES[Number(x[2])] ?? `Movie ${x[2]} (2000)`);
    expect(r.stdout).toContain('"American President, The (1995)"');
  });

  it("FILE, as jsonl: one line per user in file order; an unknown user gets an error on its line, a warning, and exit 9", async () => {
    const users = path.join(box.root, "users.txt");
    await writeFile(users, "userId\n7\n999999\n3\n");
    const r = await ms(["recommend", "--users", users, "--model", "als", "--top", "3", "--format", "jsonl"], box);
    expect(r.code).toBe(EXIT_CODES.PARTIAL);
    expect(r.code).toBe(9);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.userId)).toEqual([7, 999999, 3]);
    expect(lines[0].recommendations).toEqual(await one(7, "als", ["--top", "3"]));
    expect(lines[1]).toEqual({
      userId: 999999,
      error: expect.stringContaining(`user 999999 is not in the training ratings of run ${run.runId}`),
    });
    expect(Object.keys(lines[2].recommendations[0])).toEqual(["movieId", "score", "title"]);
    expect(r.stderr).toMatch(/user 999999 is not in the training ratings/);
    expect(r.stderr).toContain("1 of 3 users could not be answered");
    // csv leaves the user out and says so.
    const c = await ms(["recommend", "--users", users, "--model", "als", "--top", "3"], box);
    expect(c.code).toBe(9);
    expect(
      parseCsv(c.stdout)
        .slice(1)
        .map((x) => Number(x[0])),
    ).toEqual([7, 7, 7, 3, 3, 3]);
    expect(c.stderr).toContain("(left out of the csv)");
  });

  it("popularity: training counts, most first; --no-exclude-seen lists seen movies; --min-ratings is a floor", async () => {
    const all = await one(1, "popularity", ["--no-exclude-seen", "--top", "1000"]);
    const counts = new Map(all.map((x) => [x.movieId, x.score]));
    expect(all.length).toBeGreaterThan(60);
    expect(all.map((x) => x.score)).toEqual([...all.map((x) => x.score)].sort((a, b) => b - a));
    expect(all.some((x) => rated.get(1)?.has(x.movieId))).toBe(true);
    const unseen = await one(1, "popularity", ["--top", "1000"]);
    expect(unseen.map((x) => x.movieId)).toEqual(all.map((x) => x.movieId).filter((m) => !rated.get(1)?.has(m)));
    const floor = [...counts.values()].sort((a, b) => b - a)[20];
    const als = await one(1, "als", ["--top", "1000", "--min-ratings", String(floor)]);
    expect(als.length).toBeGreaterThan(0);
    for (const x of als) expect(counts.get(x.movieId)).toBeGreaterThanOrEqual(floor);
    expect(als.length).toBe(unseen.filter((x) => x.score >= floor).length);
  });

  it("a reader that closes the pipe (| head -1) ends the batch quietly, exit 0", async () => {
    // Every user 50 times, all their movies: megabytes, far more than a pipe holds.
    const many = path.join(box.root, "many-users.txt");
    await writeFile(many, Array.from({ length: 50 }, () => [...rated.keys()].join("\n")).join("\n"));
    const command = `node ${JSON.stringify(BIN)} recommend --users ${many} --model popularity --no-exclude-seen --top 1000 | head -1; exit \${PIPESTATUS[0]}`;
    const r = spawnSync("bash", ["-c", command], {
      cwd: box.root,
      env: { ...box.env, LOG_LEVEL: "warn" },
      encoding: "utf8",
    });
    expect(r.stdout).toBe("userId,rank,movieId,score,title\n");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("refuses --json and table for a batch, --user with --users, and a bad --users file (exit 3 naming the line)", async () => {
    expect((await ms(["recommend", "--users", "all", "--json"], box)).stderr).toContain("use --format jsonl");
    expect((await ms(["recommend", "--users", "all", "--format", "table"], box)).code).toBe(2);
    expect((await ms(["recommend", "--users", "all", "--user", "3"], box)).code).toBe(2);
    expect((await ms(["recommend", "--user", "3", "--min-ratings", "-1"], box)).code).toBe(2);
    const bad = path.join(box.root, "bad-users.txt");
    await writeFile(bad, "3\nthree\n");
    const r = await ms(["recommend", "--users", bad], box);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${bad}:2: not a user id`);
    expect(r.stdout).toBe("");
  });
});

describe("the run's ranker, the default", () => {
  it("answers one user with the ranker's own list, and the rated movies behind each item", async () => {
    const r = await ms(["recommend", "--user", "3", "--json"], box);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      model: string;
      recommendations: (Item & { reasons: { movieId: number; contribution: number; title: string }[] })[];
    };
    expect(doc.model).toBe("rank");
    const rankStep = run.steps.find((s) => s.step === "rank");
    const ranker = await openRanker(rankStep?.outputs.ranker.dir as string);
    const direct = ranker.recommend(Int32Array.from(rated.get(3) ?? []), 10);
    expect(doc.recommendations.map((x) => x.movieId)).toEqual(Array.from(direct.items));
    doc.recommendations.forEach((x, i) => expect(x.score).toBeCloseTo(direct.scores[i], 4));
    expect(doc.recommendations.some((x) => x.reasons.length > 0)).toBe(true);
    for (const x of doc.recommendations) {
      expect(rated.get(3)?.has(x.movieId)).toBe(false);
      for (const why of x.reasons) {
        expect(rated.get(3)?.has(why.movieId)).toBe(true);
        expect(why.contribution).toBeGreaterThan(0);
        expect(why.title).toBe(TITLES[why.movieId] ?? `Movie ${why.movieId} (2000)`);
      }
    }
    const table = await ms(["recommend", "--user", "3"], box);
    expect(table.stdout).toMatch(/^#\s+movie\s+score\s+title\s+because you rated/);
    expect(table.stdout).toContain(`rank model of run ${run.runId}`);
  });

  it("--users all: the same lists as csv (no reasons column) and as jsonl (reasons beside each item)", async () => {
    const csv = await ms(["recommend", "--users", "all"], box);
    expect(csv.code, csv.stderr).toBe(0);
    const rows = parseCsv(csv.stdout).slice(1);
    const jsonl = await ms(["recommend", "--users", "all", "--format", "jsonl"], box);
    const lines = jsonl.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.userId)).toEqual([...new Set(rows.map((x) => Number(x[0])))]);
    for (const line of lines) {
      const mine = rows.filter((x) => Number(x[0]) === line.userId).map((x) => [Number(x[2]), Number(x[3])]);
      expect(mine).toEqual(line.recommendations.map((x: Item) => [x.movieId, x.score]));
      for (const x of line.recommendations) expect(Object.keys(x)).toEqual(["movieId", "score", "title", "reasons"]);
    }
  });
});

describe("ms predict --pairs, streamed", () => {
  it("scores known pairs with the model and cold pairs by the steps' cold-start rule, marked on their rows", async () => {
    const pairs = path.join(box.root, "pairs.csv");
    await writeFile(pairs, "userId,movieId\n3,5\n3,987654\n999999,5\n999999,987654\n");
    const r = await ms(["predict", "--pairs", pairs, "--model", "als", "--format", "jsonl"], box);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const single = await ms(["predict", "--user", "3", "--movie", "5", "--model", "als", "--json"], box);
    expect(rows[0]).toEqual(JSON.parse(single.stdout).predictions[0]);
    expect(rows.slice(1).map((x) => x.cold)).toEqual(["movie", "user", "user+movie"]);
    const ratings = await readRatingsColumns(run.steps[1].outputs.ratings.dir as string);
    const rule = new ColdStartRule(ratings, splitMaskOf({ kind: "hash", seed: 42, splitProp: 0.8 }, ratings));
    for (const x of rows.slice(1)) expect(x.rating).toBeCloseTo(rule.predict(x.userId, x.movieId), 4);
    // One pair on the command line: the same row, the same rule.
    for (const x of rows.slice(1)) {
      const one = await ms(["predict", "--user", String(x.userId), "--movie", String(x.movieId), "--model", "als", "--json"], box);
      expect(JSON.parse(one.stdout).predictions, one.stderr).toEqual([x]);
    }
    expect(r.stderr).toContain("scored by the cold-start rule");
    const csv = await ms(["predict", "--pairs", pairs, "--model", "als", "--format", "csv"], box);
    expect(parseCsv(csv.stdout).map((x) => x[3])).toEqual(["cold", "", "movie", "user", "user+movie"]);
  });
});
