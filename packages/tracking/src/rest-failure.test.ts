/**
 * Honest failure of a tracking server, against real loopback HTTP servers started here: one
 * retry budget per tracker (once spent, calls fail without a request), a warning from the first
 * retry that names the URL and the error but no credentials, permanent problems failing at once,
 * a 200 with an empty or truncated body being exit 7, and the runs that could not be ended.
 */
import { promises as fs } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { BadParameterError, createLogger, exitCodeFor, TrackingUnavailableError } from "@ms/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "./testing/index.js";
import { createTracker } from "./tracker.js";
import { recordUnclosedRuns } from "./unclosed.js";

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;
const servers: http.Server[] = [];
const temps: string[] = [];

async function serve(handler: Handler, port = 0): Promise<{ url: string; server: http.Server; kill(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => handler(req, body, res));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  const kill = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, kill };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  for (const d of temps.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

/** A logger whose JSON lines the test reads. */
function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: "debug", destination }), lines, warnings: () => lines.filter((l) => l.level === 40) };
}

/** Just enough of MLflow's REST API for a run: create, log, update. */
function miniMlflow(seen: string[], statuses: string[] = []): Handler {
  let n = 0;
  return (req, body, res) => {
    const route = (req.url ?? "").replace(/\?.*$/, "");
    seen.push(route);
    const json = (doc: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc));
    const info = (id: string, status = "RUNNING", name = id) => ({
      run_id: id,
      run_name: name,
      experiment_id: "1",
      status,
      start_time: 1,
      artifact_uri: `mlflow-artifacts:/1/${id}/artifacts`,
    });
    if (route.endsWith("/runs/create"))
      return json({ run: { info: info(`run${++n}`, "RUNNING", (JSON.parse(body) as { run_name?: string }).run_name), data: {} } });
    if (route.endsWith("/runs/log-batch")) return json({});
    if (route.endsWith("/runs/update")) {
      const b = JSON.parse(body) as { run_id: string; status: string };
      statuses.push(b.status);
      return json({ run_info: info(b.run_id, b.status) });
    }
    res.writeHead(404).end(JSON.stringify({ error_code: "ENDPOINT_NOT_FOUND", message: route }));
  };
}

describe("a tracking server killed mid-run", () => {
  it("spends one budget for the whole run, warns from the first retry, then fails every call at once", async () => {
    const seen: string[] = [];
    const first = await serve(miniMlflow(seen));
    const port = Number(new URL(first.url).port);
    const { logger, warnings } = capture();
    const secret = "tok-never-shown-42";
    const tracker = createTracker(first.url, {
      env: {},
      logger,
      auth: { token: secret },
      retry: { maxTotalMs: 600, initialDelayMs: 20, maxDelayMs: 100 },
    });
    const parent = await tracker.startRun({ experimentId: "1", runName: "pipeline" });
    const step = await tracker.startRun({ experimentId: "1", runName: "als" });
    await tracker.logMetrics(step.runId, [{ key: "loss", value: 1 }]);
    await first.kill();

    const lost = await tracker.logMetrics(step.runId, [{ key: "loss", value: 2, step: 1 }]).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(TrackingUnavailableError);
    expect(exitCodeFor(lost)).toBe(7);
    expect((lost as Error).message).toMatch(/retry budget of 0\.6s for this run is spent \(last: ECONNREFUSED/);
    const warned = warnings();
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ trackingUri: first.url, endpoint: "POST /api/2.0/mlflow/runs/log-batch" });
    // The first retry may see the kept-alive connection closing rather than a refusal.
    expect(String(warned[0].error)).toMatch(/ECONNREFUSED|UND_ERR_SOCKET/);
    expect(String(warned[0].msg)).toContain(first.url);
    expect(JSON.stringify(warned)).not.toContain(secret);

    // The server is back on the same port, but the run's budget is spent: nothing more is sent.
    const after: string[] = [];
    await serve(miniMlflow(after), port);
    await expect(tracker.endRun(step.runId, "FINISHED")).rejects.toThrow(/not sent, the retry budget .* is spent/);
    await expect(tracker.endRun(parent.runId, "FAILED")).rejects.toBeInstanceOf(TrackingUnavailableError);
    expect(after).toEqual([]);

    const unclosed = tracker.unclosedRuns();
    expect(unclosed.map((r) => [r.runId, r.runName, r.wantedStatus])).toEqual([
      [parent.runId, "pipeline", "FAILED"],
      // It lost a write, so it is never FINISHED.
      [step.runId, "als", "FAILED"],
    ]);
    expect(unclosed.every((r) => r.trackingUri === first.url && /unavailable/.test(r.error ?? ""))).toBe(true);
    expect(warnings().filter((w) => /could not end run/.test(String(w.msg)))).toHaveLength(2);

    // And a fresh tracker (the next run) can end them.
    const next = createTracker(first.url, { env: {}, logger, retry: { maxTotalMs: 600 } });
    for (const r of unclosed) await next.endRun(r.runId, r.wantedStatus);
    expect(after.filter((r) => r.endsWith("/runs/update"))).toHaveLength(2);
    expect(next.unclosedRuns()).toEqual([]);
  });

  it("records the runs that could not be ended in a JSON file that accumulates", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ms-unclosed-"));
    temps.push(dir);
    const file = path.join(dir, "tracking", "unclosed-runs.json");
    expect(await recordUnclosedRuns(file, [])).toEqual([]);
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
    await recordUnclosedRuns(file, [{ runId: "a1", trackingUri: "http://h:5000", wantedStatus: "FAILED", error: "down" }]);
    const all = await recordUnclosedRuns(file, [
      { runId: "a1", trackingUri: "http://h:5000", wantedStatus: "KILLED", error: "still down" },
      { runId: "b2", trackingUri: "http://h:5000" },
    ]);
    expect(all.map((r) => [r.runId, r.wantedStatus])).toEqual([
      ["a1", "KILLED"],
      ["b2", undefined],
    ]);
    expect(JSON.parse(await fs.readFile(file, "utf8")).runs).toHaveLength(2);
  });
});

describe("nothing listening", () => {
  it("a refused connection to a server never reached is retried briefly, with a warning and a hint", async () => {
    const port = await freePort();
    const { logger, warnings } = capture();
    const tracker = createTracker(`http://127.0.0.1:${port}`, {
      env: {},
      logger,
      retry: { maxTotalMs: 60_000, unreachedMs: 300, initialDelayMs: 20, maxDelayMs: 100 },
    });
    const error = await tracker.getOrCreateExperiment("x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrackingUnavailableError);
    expect((error as Error).message).toMatch(/ECONNREFUSED.*nothing has answered at this address yet: check the host and port/);
    expect(warnings()).toHaveLength(1);
    await expect(tracker.listExperiments()).rejects.toThrow(/not sent/);
  }, 10_000);

  it("refuses addresses no request can reach before sending anything", () => {
    for (const uri of ["http://127.0.0.1:0", "http://127.0.0.1:70000", "http://mlflow..example.com", "http://-mlflow-.example.com:5000"]) {
      const error = (() => {
        try {
          createTracker(uri, { env: {} });
        } catch (e) {
          return e;
        }
      })();
      expect(error, uri).toBeInstanceOf(BadParameterError);
      expect(exitCodeFor(error)).toBe(2);
    }
  });
});

describe("answers that waiting cannot fix fail at once", () => {
  it.each([408, 409, 418, 422])("HTTP %i is not retried", async (status) => {
    let calls = 0;
    const { url } = await serve((_req, _body, res) => {
      calls++;
      res.writeHead(status).end(JSON.stringify({ error_code: "NOPE", message: "no" }));
    });
    const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 5_000, initialDelayMs: 20 } });
    await expect(tracker.getExperiment("1")).rejects.toThrow(/NOPE/);
    expect(calls).toBe(1);
  });

  it("a 200 with an empty body is TrackingUnavailableError naming the URL and the endpoint", async () => {
    let calls = 0;
    const { url } = await serve((_req, _body, res) => {
      calls++;
      res.writeHead(200).end();
    });
    const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 5_000, initialDelayMs: 20 } });
    const error = await tracker.getOrCreateExperiment("x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrackingUnavailableError);
    expect(exitCodeFor(error)).toBe(7);
    expect((error as Error).message).toContain(`${url}: GET /api/2.0/mlflow/experiments/get-by-name answered 200 with an empty body`);
    expect(calls).toBe(1);
  });

  it("a 200 whose body is cut off, mid-stream or mid-JSON, is TrackingUnavailableError", async () => {
    const { url } = await serve((req, _body, res) => {
      if (req.url?.includes("experiments/get?")) {
        res.writeHead(200, { "content-type": "application/json", "content-length": "200" });
        res.write('{"experiment": {"experiment_id": "1"');
        // Once the client holds the headers and part of the body.
        setTimeout(() => res.destroy(), 50);
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"run": {"info": {"run_id": "ab');
    });
    const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 5_000, initialDelayMs: 20 } });
    const midStream = await tracker.getExperiment("1").catch((e: unknown) => e);
    expect(midStream).toBeInstanceOf(TrackingUnavailableError);
    expect((midStream as Error).message).toMatch(
      new RegExp(`^MLflow server ${url}: GET /api/2.0/mlflow/experiments/get answered 200 with a truncated body`),
    );
    const midJson = await tracker.getRun("ab").catch((e: unknown) => e);
    expect(midJson).toBeInstanceOf(TrackingUnavailableError);
    expect((midJson as Error).message).toMatch(/runs\/get answered 200 with a body that is not JSON, or truncated JSON/);
  });

  it("a 200 without the field MLflow always sends is TrackingUnavailableError", async () => {
    const { url } = await serve((_req, _body, res) => res.writeHead(200).end("{}"));
    const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 5_000 } });
    await expect(tracker.startRun({ experimentId: "1" })).rejects.toThrow(
      /runs\/create answered: run: Invalid key: Expected "run" but received undefined; is .* an MLflow tracking server\?/,
    );
  });

  it("a 200 with a field of the wrong type is TrackingUnavailableError naming the endpoint and the field", async () => {
    const { url } = await serve((req, _body, res) => {
      const doc = req.url?.includes("runs/get")
        ? { run: { info: { run_id: "ab", status: "BOGUS" }, data: {} } }
        : {
            metrics: [
              { key: "m", value: 1, step: 0, timestamp: 1 },
              { key: "m", value: "lots", step: 1, timestamp: 2 },
            ],
          };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc));
    });
    const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 5_000 } });
    const run = await tracker.getRun("ab").catch((e: unknown) => e);
    expect(run).toBeInstanceOf(TrackingUnavailableError);
    expect((run as Error).message).toMatch(
      new RegExp(`^MLflow server ${url}: GET /api/2.0/mlflow/runs/get answered: run\\.info\\.status: `),
    );
    const history = await tracker.getMetricHistory("ab", "m").catch((e: unknown) => e);
    expect(history).toBeInstanceOf(TrackingUnavailableError);
    expect((history as Error).message).toMatch(/GET \/api\/2\.0\/mlflow\/metrics\/get-history answered: metrics\[1\]\.value: /);
  });

  it("a write lost to a broken answer ends the run FAILED, not FINISHED", async () => {
    const seen: string[] = [];
    const statuses: string[] = [];
    const mini = miniMlflow(seen, statuses);
    const { url } = await serve((req, body, res) =>
      req.url?.endsWith("/runs/log-batch") ? res.writeHead(200).end() : mini(req, body, res),
    );
    const tracker = createTracker(url, { env: {}, retry: { maxTotalMs: 5_000 } });
    const run = await tracker.startRun({ experimentId: "1" });
    await expect(tracker.logMetrics(run.runId, [{ key: "m", value: 1 }])).rejects.toBeInstanceOf(TrackingUnavailableError);
    await expect(tracker.endRun(run.runId, "FINISHED")).rejects.toThrow(/lost writes .* ended as FAILED instead of FINISHED/);
    expect(statuses).toEqual(["FAILED"]);
    expect(tracker.unclosedRuns()).toEqual([]);
  });
});
