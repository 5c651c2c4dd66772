/**
 * The registry client without Python: names and aliases checked as MLflow checks them, a file
 * store refused with exit 7, and the wait for READY against a loopback server we control that
 * answers as a server with asynchronous registration does (PENDING, then READY or FAILED).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exitCodeFor, InterruptedError, TrackingUnavailableError } from "@ms/contracts";
import { afterAll, describe, expect, it } from "vitest";
import { openRegistry, validateAlias, validateModelName, type ModelVersion } from "./registry.js";

describe("names and aliases", () => {
  it("accepts MLflow's names and refuses the ones a models:/ URI cannot carry", () => {
    expect(validateModelName("movielens keras")).toBe("movielens keras");
    expect(validateModelName("team@prod")).toBe("team@prod");
    for (const bad of ["", "  ", "a/b", "a:b"]) expect(() => validateModelName(bad), bad).toThrow(/--register-model/);
  });

  it("accepts word characters and dashes, refuses reserved aliases", () => {
    expect(validateAlias("champion")).toBe("champion");
    expect(validateAlias("canary-2")).toBe("canary-2");
    for (const bad of ["", "a b", "a@b", "latest", "Latest", "v1", "V22", "x".repeat(256)]) {
      let code: number | undefined;
      try {
        validateAlias(bad);
      } catch (error) {
        code = exitCodeFor(error);
      }
      expect(code, bad).toBe(2);
    }
  });
});

describe("openRegistry", () => {
  it("refuses a file store with exit 7, before any request", () => {
    for (const uri of ["./mlruns", "file:///tmp/mlruns", undefined]) {
      let error: unknown;
      try {
        openRegistry(uri, { env: {}, cwd: "/tmp" });
      } catch (e) {
        error = e;
      }
      expect(error, String(uri)).toBeInstanceOf(TrackingUnavailableError);
      expect(exitCodeFor(error)).toBe(7);
      expect((error as Error).message).toMatch(/file store, which has no model registry/);
    }
  });
});

/** A server whose model-versions/get answers the statuses of `script` in turn (the last one repeats). */
async function versionServer(script: string[]): Promise<{ url: string; polls: () => number; close: () => Promise<void> }> {
  let polls = 0;
  const server = http.createServer((req, res) => {
    const status = script[Math.min(polls, script.length - 1)];
    polls++;
    res.setHeader("content-type", "application/json");
    if (!req.url?.startsWith("/api/2.0/mlflow/model-versions/get")) {
      res.statusCode = 404;
      res.end(JSON.stringify({ error_code: "ENDPOINT_NOT_FOUND" }));
      return;
    }
    res.end(JSON.stringify({ model_version: { name: "m", version: "1", status, status_message: status === "READY" ? "" : "copying" } }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    polls: () => polls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const pending: ModelVersion = {
  name: "m",
  version: 1,
  status: "PENDING_REGISTRATION",
  statusMessage: "",
  source: "",
  runId: "r",
  modelId: "",
  aliases: [],
  creationTimestamp: null,
};

describe("waitUntilReady", () => {
  const servers: Awaited<ReturnType<typeof versionServer>>[] = [];
  const serve = async (script: string[]) => {
    const s = await versionServer(script);
    servers.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it("polls a pending version until READY", async () => {
    const s = await serve(["PENDING_REGISTRATION", "PENDING_REGISTRATION", "READY"]);
    const ready = await openRegistry(s.url, { env: {} }).waitUntilReady("m", pending, { intervalMs: 5 });
    expect(ready.status).toBe("READY");
    expect(s.polls()).toBe(3);
  });

  it("FAILED_REGISTRATION is exit 7 with the server's reason", async () => {
    const s = await serve(["PENDING_REGISTRATION", "FAILED_REGISTRATION"]);
    const wait = openRegistry(s.url, { env: {} }).waitUntilReady("m", pending, { intervalMs: 5 });
    await expect(wait).rejects.toThrow(/registering version 1 of model m failed: copying/);
    await expect(wait).rejects.toBeInstanceOf(TrackingUnavailableError);
  });

  it("gives up after its timeout, naming the status", async () => {
    const s = await serve(["PENDING_REGISTRATION"]);
    const wait = openRegistry(s.url, { env: {} }).waitUntilReady("m", pending, { intervalMs: 5, timeoutMs: 60 });
    await expect(wait).rejects.toThrow(/still PENDING_REGISTRATION after/);
  });

  it("stops at once when its signal aborts", async () => {
    const s = await serve(["PENDING_REGISTRATION"]);
    const controller = new AbortController();
    const wait = openRegistry(s.url, { env: {} }).waitUntilReady("m", pending, { intervalMs: 1_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(wait).rejects.toBeInstanceOf(InterruptedError);
  });
});
