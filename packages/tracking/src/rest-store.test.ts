/**
 * The REST client's failure handling against loopback servers we control: retries with backoff
 * on 503/429, a bounded total time against a closed port, auth headers, secrets kept out of
 * errors, and server errors mapped to the project's error classes.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { BadParameterError, MissingArtifactError, TrackingUnavailableError } from "@ms/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { buildFilter, RestStore } from "./rest-store.js";
import { TAGS } from "./tags.js";
import { freePort } from "./testing/index.js";

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;
const servers: http.Server[] = [];

async function serve(handler: Handler): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => handler(req, body, res));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

const EXPERIMENT = { experiment: { experiment_id: "7", name: "e", artifact_location: "mlflow-artifacts:/7", lifecycle_stage: "active" } };
const fast = { maxTotalMs: 3_000, initialDelayMs: 20, maxDelayMs: 100 };

describe("RestStore retries", () => {
  it("retries 503 and 429 with backoff, then succeeds", async () => {
    const seen: number[] = [];
    const url = await serve((_req, _body, res) => {
      seen.push(Date.now());
      if (seen.length <= 3) {
        res.writeHead(seen.length === 2 ? 429 : 503).end("busy");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(EXPERIMENT));
    });
    const store = new RestStore(url, { retry: fast });
    expect((await store.getExperiment("7")).name).toBe("e");
    expect(seen).toHaveLength(4);
    expect(seen[3] - seen[0]).toBeGreaterThanOrEqual(20);
  });

  it("gives up on a closed port within the time budget with TrackingUnavailableError", async () => {
    const port = await freePort();
    const store = new RestStore(`http://127.0.0.1:${port}`, { retry: { maxTotalMs: 800, initialDelayMs: 20, maxDelayMs: 200 } });
    const t0 = Date.now();
    const error = await store.getExperiment("1").catch((e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(error).toBeInstanceOf(TrackingUnavailableError);
    expect((error as Error).message).toMatch(/unavailable: GET \/api\/2.0\/mlflow\/experiments\/get failed \d+ time\(s\).*ECONNREFUSED/);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("times out a request that hangs and stays within the budget", async () => {
    const url = await serve(() => {
      // never answers
    });
    const store = new RestStore(url, { retry: { maxTotalMs: 700, initialDelayMs: 20, requestTimeoutMs: 200 } });
    const t0 = Date.now();
    await expect(store.getExperiment("1")).rejects.toThrow(/timed out/);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("does not retry a 4xx and maps MLflow's error codes", async () => {
    let calls = 0;
    const url = await serve((req, _body, res) => {
      calls++;
      if (req.url?.includes("get-by-name"))
        res.writeHead(404).end(JSON.stringify({ error_code: "RESOURCE_DOES_NOT_EXIST", message: "no such experiment" }));
      else res.writeHead(400).end(JSON.stringify({ error_code: "INVALID_PARAMETER_VALUE", message: "bad id" }));
    });
    const store = new RestStore(url, { retry: fast });
    expect(await store.getExperimentByName("nope")).toBeUndefined();
    await expect(store.getExperiment("1")).rejects.toBeInstanceOf(BadParameterError);
    await expect(store.getRun("abc")).rejects.toThrow(/INVALID_PARAMETER_VALUE: bad id/);
    expect(calls).toBe(3);
  });
});

describe("RestStore auth", () => {
  it("sends a bearer token and never shows it in errors", async () => {
    const token = "tok-very-secret-123";
    const headers: Array<string | undefined> = [];
    const url = await serve((req, _body, res) => {
      headers.push(req.headers.authorization);
      res.writeHead(401).end(JSON.stringify({ error_code: "UNAUTHENTICATED", message: `bad credentials ${req.headers.authorization}` }));
    });
    const store = new RestStore(url, { auth: { token }, retry: fast });
    const error = (await store.getExperiment("1").catch((e: unknown) => e)) as Error;
    expect(headers).toEqual([`Bearer ${token}`]);
    expect(error).toBeInstanceOf(TrackingUnavailableError);
    expect(error.message).toMatch(/MLFLOW_TRACKING_TOKEN/);
    expect(error.message).not.toContain(token);
    expect(JSON.stringify(error)).not.toContain(token);
  });

  it("sends basic auth from the URI's credentials and hides the password", async () => {
    const seen: Array<string | undefined> = [];
    const url = await serve((req, _body, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(503).end(`echo ${req.headers.authorization}`);
    });
    const withCreds = url.replace("http://", "http://alice:pa55word-x@");
    const store = new RestStore(withCreds, { retry: { maxTotalMs: 200, initialDelayMs: 10 } });
    expect(store.uri).toBe(url);
    const error = (await store.getExperiment("1").catch((e: unknown) => e)) as Error;
    expect(seen[0]).toBe(`Basic ${Buffer.from("alice:pa55word-x").toString("base64")}`);
    expect(error.message).not.toContain("pa55word-x");
    expect(error.message).not.toContain(Buffer.from("alice:pa55word-x").toString("base64"));
  });
});

describe("RestStore requests", () => {
  it("encodes non-finite metrics as protobuf JSON strings", async () => {
    const bodies: unknown[] = [];
    const url = await serve((_req, body, res) => {
      bodies.push(JSON.parse(body));
      res.writeHead(200).end("{}");
    });
    const store = new RestStore(url, { retry: fast });
    await store.logMetrics("abc123", [
      { key: "m", value: Number.NaN, step: 1, timestamp: 5 },
      { key: "m", value: -Infinity, step: 2, timestamp: 5 },
    ]);
    expect(bodies).toEqual([
      {
        run_id: "abc123",
        metrics: [
          { key: "m", value: "NaN", step: 1, timestamp: 5 },
          { key: "m", value: "-Infinity", step: 2, timestamp: 5 },
        ],
      },
    ]);
  });

  it("builds MLflow filter strings for equality search", () => {
    expect(buildFilter({ tags: [[TAGS.parent, "abc"]], params: [["lr", "it's"]], status: "FINISHED" })).toBe(
      `tags.\`${TAGS.parent}\` = 'abc' AND params.\`lr\` = "it's" AND attributes.status = 'FINISHED'`,
    );
    expect(() => buildFilter({ tags: [], params: [["p", `'"`]], status: undefined })).toThrow(BadParameterError);
  });

  it("names a missing run", async () => {
    const url = await serve((_req, _body, res) =>
      res.writeHead(404).end(JSON.stringify({ error_code: "RESOURCE_DOES_NOT_EXIST", message: "Run 'x1' not found" })),
    );
    await expect(new RestStore(url, { retry: fast }).getRun("x1")).rejects.toBeInstanceOf(MissingArtifactError);
  });
});
