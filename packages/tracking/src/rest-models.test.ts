/**
 * The REST store's logged models against a server without them (MLflow 2: Flask answers an unknown
 * route with its HTML 404 page, or MLflow with ENDPOINT_NOT_FOUND): `createLoggedModel` resolves
 * undefined at once, without retries, so a run goes on with the model as run artifacts only; any
 * other failure still fails.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { BadParameterError } from "@ms/contracts";
import { afterEach, describe, expect, it } from "vitest";
import { createTracker } from "./tracker.js";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function serve(answer: (path: string) => [number, string, string]): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume().on("end", () => {
      paths.push(`${req.method} ${req.url}`);
      const [status, type, body] = answer(req.url ?? "");
      res.writeHead(status, { "content-type": type }).end(body);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

const FLASK_404 =
  "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n";
const options = { env: {}, retry: { maxTotalMs: 2_000, initialDelayMs: 10, maxDelayMs: 50 } };

describe("logged models on a server without them", () => {
  it("Flask's 404 page: undefined, one request", async () => {
    const server = await serve(() => [404, "text/html; charset=utf-8", FLASK_404]);
    const tracker = createTracker(server.url, options);
    expect(await tracker.createLoggedModel({ experimentId: "1", name: "model", sourceRunId: "abc" })).toBeUndefined();
    expect(server.paths).toEqual(["POST /api/2.0/mlflow/logged-models"]);
  });

  it("MLflow's ENDPOINT_NOT_FOUND: undefined; a refused request is still an error", async () => {
    const missing = await serve(() => [
      404,
      "application/json",
      JSON.stringify({ error_code: "ENDPOINT_NOT_FOUND", message: "no such endpoint" }),
    ]);
    expect(await createTracker(missing.url, options).createLoggedModel({ experimentId: "1", name: "model" })).toBeUndefined();
    const refusing = await serve(() => [
      400,
      "application/json",
      JSON.stringify({ error_code: "INVALID_PARAMETER_VALUE", message: "bad experiment" }),
    ]);
    await expect(createTracker(refusing.url, options).createLoggedModel({ experimentId: "1", name: "model" })).rejects.toBeInstanceOf(
      BadParameterError,
    );
  });
});
