/**
 * `ms serve` through the built bin on a small synthetic run, with real HTTP requests on a port
 * the server picked: every input form of MLflow's scoring protocol (answers equal to `ms predict`'s,
 * pairs with an unknown user or movie scored by the same cold-start rule),
 * its refusals (status, error_code), the body and batch limits, 503 past the requests-in-progress
 * bound, 408 for a client that stalls, `/recommend`, a SIGHUP that swaps in a newer run's model
 * while requests keep being answered, and a SIGTERM that answers the request in progress and
 * exits 0.
 */
import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, finish, ms, runJson, sandbox, spawnMs, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
let run: RunDoc;

interface Listening {
  url: string;
  port: number;
  runId: string;
  model: string;
}

interface Server {
  child: ChildProcess;
  info: Listening;
  done: ReturnType<typeof finish>;
}

/** Starts `ms serve --port 0 --json` and resolves with its one JSON document once it is listening. */
async function startServe(args: string[] = []): Promise<Server> {
  const child = spawnMs(["serve", "--port", "0", "--json", ...args], box);
  const done = finish(child);
  const info = await new Promise<Listening>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]) as Listening);
    });
    void done.then((r) => reject(new Error(`ms serve exited ${r.code} before listening:\n${r.stderr}`)));
  });
  return { child, info, done };
}

/** What the server answers: predictions, recommendations, or MLflow's error body. */
interface Answer {
  error_code?: string;
  message?: string;
  predictions?: number[];
  recommendations?: { userId: number; items: number[]; scores: number[] }[];
}

async function post(url: string, body: string, type = "application/json"): Promise<{ status: number; json: Answer; text: string }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": type }, body });
  const text = await res.text();
  let json: Answer = {};
  try {
    json = JSON.parse(text) as Answer;
  } catch {
    // a plain-text answer (415)
  }
  return { status: res.status, json, text };
}

/** A raw HTTP request whose body is sent in part now; `rest()` sends the remainder and resolves with the status line. */
function partialRequest(port: number, url: string, body: string, sentNow: number): { rest(): Promise<string>; response: Promise<string> } {
  const socket = net.connect(port, "127.0.0.1");
  let data = "";
  const response = new Promise<string>((resolve) => {
    socket.on("data", (d) => (data += d.toString()));
    socket.on("close", () => resolve(data));
    socket.on("error", () => resolve(data));
  });
  socket.write(
    `POST ${url} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`,
  );
  socket.write(body.slice(0, sentNow));
  return {
    response,
    rest: async () => {
      socket.write(body.slice(sentNow));
      return response;
    },
  };
}

const PAIRS: [number, number][] = [];
let server: Server;

beforeAll(async () => {
  box = await sandbox("ms-driver-serve-");
  run = await runJson(SMALL, box);
  // Pairs the model knows: the first ratings of the synthetic file that `ms predict` scores.
  const p = await ms(["recommend", "--user", "1", "--top", "4", "--json"], box);
  const recs = JSON.parse(p.stdout) as { recommendations: { movieId: number }[] };
  for (const r of recs.recommendations) PAIRS.push([1, r.movieId], [2, r.movieId]);
  server = await startServe(["--max-batch", "50", "--max-body-bytes", "20000"]);
}, 120_000);

afterAll(async () => {
  server?.child.kill("SIGKILL");
  await box.dispose();
});

describe("ms serve: MLflow's scoring protocol", () => {
  it("answers /ping, /health and /version, and names its run on /model", async () => {
    const { url } = server.info;
    for (const route of ["/ping", "/health"]) expect((await fetch(url + route)).status).toBe(200);
    expect(await (await fetch(`${url}/version`)).text()).toMatch(/^\d+\.\d+\.\d+/);
    expect(await (await fetch(`${url}/model`)).json()).toMatchObject({ runId: run.runId, kind: "keras" });
    expect(server.info).toMatchObject({ runId: run.runId, model: "keras" });
    expect(server.info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("reads every input form to the same predictions, those of ms predict, unknown ids by its cold-start rule", async () => {
    // The known pairs, then an unknown user, an unknown movie, both.
    const all: [number, number][] = [...PAIRS, [987654, PAIRS[0][1]], [1, 987654], [987654, 987655]];
    const file = path.join(box.root, "pairs.csv");
    await writeFile(file, `userId,movieId\n${all.map((p) => p.join(",")).join("\n")}\n`);
    const cli = await ms(["predict", "--pairs", file, "--json"], box);
    const rows = (JSON.parse(cli.stdout) as { predictions: { rating: number; cold?: string }[] }).predictions;
    expect(rows.map((p) => p.cold)).toEqual([...PAIRS.map(() => undefined), "user", "movie", "user+movie"]);
    const expected = rows.map((p) => p.rating);
    // One pair on the command line is scored by the same rule.
    const one = await ms(["predict", "--user", "987654", "--movie", String(PAIRS[0][1]), "--json"], box);
    expect(one.code, one.stderr).toBe(0);
    expect((JSON.parse(one.stdout) as { predictions: unknown[] }).predictions).toEqual([
      { userId: 987654, movieId: PAIRS[0][1], rating: expected[PAIRS.length], cold: "user" },
    ]);
    const url = `${server.info.url}/invocations`;
    const records = all.map(([userId, movieId]) => ({ userId, movieId }));
    const bodies: [string, string][] = [
      [JSON.stringify({ dataframe_split: { columns: ["movieId", "userId"], data: all.map(([u, m]) => [m, u]) } }), "application/json"],
      [JSON.stringify({ dataframe_records: records }), "application/json"],
      [JSON.stringify({ instances: records }), "application/json; charset=utf-8"],
      [JSON.stringify({ inputs: { userId: all.map((p) => p[0]), movieId: all.map((p) => p[1]) } }), "application/json"],
      [JSON.stringify({ inputs: all }), "application/json"],
      [`movieId,userId\n${all.map(([u, m]) => `${m},${u}`).join("\n")}\n`, "text/csv"],
    ];
    for (const [body, type] of bodies) {
      const r = await post(url, body, type);
      expect(r.status, r.text).toBe(200);
      const got = r.json.predictions ?? [];
      expect(got).toHaveLength(all.length);
      for (const [i, v] of got.entries()) expect(Math.abs(v - expected[i])).toBeLessThan(1e-4);
    }
  });

  it("refuses bad requests with MLflow's error body and status", async () => {
    const url = `${server.info.url}/invocations`;
    const cases: [string, string, number, string, RegExp][] = [
      ['{"dataframe_records": [', "application/json", 400, "BAD_REQUEST", /valid JSON/],
      ["[1, 2]", "application/json", 400, "BAD_REQUEST", /Received a list/],
      ['{"records": []}', "application/json", 400, "BAD_REQUEST", /exactly one of the input fields/],
      ['{"dataframe_records": [{"userId": 1}]}', "application/json", 400, "INVALID_PARAMETER_VALUE", /missing inputs \['movieId'\]/],
      [
        '{"dataframe_split": {"columns": ["userId", "item"], "data": [[1, 2]]}}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        /missing inputs \['movieId'\]\. Note that there were extra inputs: \['item'\]/,
      ],
      ['{"dataframe_records": [{"userId": 1.5, "movieId": 2}]}', "application/json", 400, "INVALID_PARAMETER_VALUE", /column userId/],
      ["userId\n1\n", "text/csv", 400, "INVALID_PARAMETER_VALUE", /missing inputs \['movieId'\]/],
      [
        `{"inputs": {"userId": [1], "movieId": [${PAIRS[0][1]}], "x": 1}, "dataframe_records": []}`,
        "application/json",
        400,
        "BAD_REQUEST",
        /exactly one/,
      ],
      [
        JSON.stringify({ inputs: Array.from({ length: 51 }, () => [1, PAIRS[0][1]]) }),
        "application/json",
        400,
        "BAD_REQUEST",
        /at most 50/,
      ],
      [
        JSON.stringify({ inputs: Array.from({ length: 3000 }, () => [1, PAIRS[0][1]]) }),
        "application/json",
        413,
        "RESOURCE_LIMIT_EXCEEDED",
        /./,
      ],
    ];
    for (const [body, type, status, code, message] of cases) {
      const r = await post(url, body, type);
      expect(r.status, `${body.slice(0, 60)}: ${r.text}`).toBe(status);
      expect(r.json.error_code).toBe(code);
      expect(r.json.message).toMatch(message);
    }
    const plain = await post(url, "1,2", "text/plain");
    expect(plain.status).toBe(415);
    expect(plain.text).toContain("only supports the following content types");
    const missing = await fetch(`${server.info.url}/nothing`);
    expect(missing.status).toBe(404);
  });

  it("ranks unrated movies on /recommend and checks its body against the schema", async () => {
    const url = `${server.info.url}/recommend`;
    const r = await post(url, JSON.stringify({ users: [1, 2], k: 3, model: "rating" }));
    expect(r.status, r.text).toBe(200);
    const recs = r.json.recommendations ?? [];
    expect(recs.map((x) => x.userId)).toEqual([1, 2]);
    for (const x of recs) {
      expect(x.items).toHaveLength(3);
      expect([...x.scores].sort((a, b) => b - a)).toEqual(x.scores);
    }
    // The top movies of ms recommend (which leaves out rated ones) are the same.
    const cli = JSON.parse((await ms(["recommend", "--user", "1", "--top", "3", "--model", "keras", "--json"], box)).stdout) as {
      recommendations: { movieId: number }[];
    };
    expect(recs[0].items).toEqual(cli.recommendations.map((x) => x.movieId));
    const excluded = await post(url, JSON.stringify({ users: [1], k: 3, model: "rating", exclude: [recs[0].items[0]] }));
    expect(excluded.json.recommendations?.[0].items).not.toContain(recs[0].items[0]);
    for (const bad of ['{"users": ["a"]}', '{"users": []}', '{"users": [1], "k": 0}', '{"user": [1]}']) {
      const b = await post(url, bad);
      expect(b.status, bad).toBe(400);
      expect(b.json.error_code).toBe("BAD_REQUEST");
    }
    // The run's ranking model (the rank step's) answers by default: k movies the user has not rated.
    const ranked = await post(url, JSON.stringify({ users: [1], k: 5 }));
    expect(ranked.status, ranked.text).toBe(200);
    expect(ranked.json).toMatchObject({ model: "rank" });
    const rankedItems = ranked.json.recommendations?.[0].items ?? [];
    expect(rankedItems).toHaveLength(5);
    const withoutFirst = await post(url, JSON.stringify({ users: [1], k: 5, exclude: [rankedItems[0]] }));
    expect(withoutFirst.json.recommendations?.[0].items).toEqual([...rankedItems.slice(1), expect.any(Number)]);
    const unknown = await post(url, '{"users": [987654], "model": "rating"}');
    expect(unknown.status).toBe(400);
    expect(unknown.json.error_code).toBe("INVALID_PARAMETER_VALUE");
  });

  it("writes one JSON access-log line per request on stderr", async () => {
    await fetch(`${server.info.url}/ping?probe=access-log`);
    await new Promise((r) => setTimeout(r, 200));
    server.child.kill("SIGTERM");
    const result = await server.done;
    expect(result.code).toBe(0);
    const lines = result.stderr.split("\n").filter((l) => l.includes("probe=access-log"));
    expect(lines, lines.join("\n")).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ msg: "access", method: "GET", status: 200, url: "/ping?probe=access-log" });
    expect(result.stdout.trim().split("\n")).toHaveLength(1);
  });
});

describe("ms serve: limits, signals and swaps", () => {
  it("answers 503 past --max-in-flight and 408 to a client that stalls", async () => {
    const s = await startServe(["--max-in-flight", "1", "--request-timeout-seconds", "1"]);
    const body = JSON.stringify({ inputs: [PAIRS[0]] });
    const slow = partialRequest(s.info.port, "/invocations", body, 5);
    await new Promise((r) => setTimeout(r, 150));
    const refused = await post(`${s.info.url}/invocations`, body);
    expect(refused.status).toBe(503);
    expect(refused.json.error_code).toBe("TEMPORARILY_UNAVAILABLE");
    expect(await slow.response).toMatch(/^HTTP\/1\.1 408/);
    // The stalled request's slot is freed when its socket closes, just after Node writes the 408, so
    // a request sent the moment the 408 arrives may still meet a 503: a client retries (Retry-After).
    let status = 503;
    for (const deadline = Date.now() + 3000; status === 503 && Date.now() < deadline; ) {
      status = (await post(`${s.info.url}/invocations`, body)).status;
      if (status === 503) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    s.child.kill("SIGTERM");
    expect((await s.done).code).toBe(0);
  });

  it("on SIGTERM answers the request in progress, accepts nothing new, and exits 0", async () => {
    const s = await startServe();
    const body = JSON.stringify({ inputs: [PAIRS[0]] });
    const inProgress = partialRequest(s.info.port, "/invocations", body, 5);
    await new Promise((r) => setTimeout(r, 150));
    s.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    await expect(fetch(`${s.info.url}/ping`)).rejects.toThrow();
    const answer = await inProgress.rest();
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('"predictions"');
    const result = await s.done;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("closing: no new requests");
  });

  it("on SIGHUP swaps in the newest run's model without dropping a request", async () => {
    const s = await startServe();
    expect(s.info.runId).toBe(run.runId);
    const newer = await runJson([...SMALL, "-P", "keras_seed=7"], box);
    const body = JSON.stringify({ inputs: [PAIRS[0]] });
    const statuses: number[] = [];
    let swapped = false;
    const load = (async () => {
      while (!swapped) statuses.push((await post(`${s.info.url}/invocations`, body)).status);
    })();
    s.child.kill("SIGHUP");
    for (let i = 0; i < 100 && !swapped; i++) {
      await new Promise((r) => setTimeout(r, 100));
      swapped = ((await (await fetch(`${s.info.url}/model`)).json()) as { runId: string }).runId === newer.runId;
    }
    swapped = true;
    await load;
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((x) => x === 200)).toBe(true);
    expect(((await (await fetch(`${s.info.url}/model`)).json()) as { runId: string }).runId).toBe(newer.runId);
    s.child.kill("SIGTERM");
    const result = await s.done;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("model swapped");
  }, 120_000);

  it("has --help, and refuses a bad flag with exit 2", async () => {
    const help = await ms(["serve", "--help"], box);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--max-in-flight");
    expect(help.stdout).toContain("/invocations");
    const bad = await ms(["serve", "--port", "70000"], box);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--port");
  });
});
