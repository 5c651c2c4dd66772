/**
 * The HTTP server (Fastify): MLflow's scoring routes (`/ping`, `/health`, `/version`,
 * `/invocations`) and `/recommend` over the model in a `ModelSlot`, with the limits a server
 * facing strangers needs: a body limit (413), a row limit per request, a bound on requests being
 * worked on at once (503 past it), timeouts for clients that send slowly (408) or idle, one JSON
 * access-log line per request (pino), and a graceful close (Fastify stops accepting, answers what
 * it holds, closes idle keep-alive connections; a bounded drain closes the rest).
 */
import http from "node:http";
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "@ms/contracts";
import { warmPairs } from "@ms/serve";
import type { ServingModel } from "./model.js";
import { pairsFromCsv, pairsFromJson, ScoringError, type Pairs } from "./protocol.js";
import { recommendFor, RecommendBody, type RecommendRequest } from "./recommend.js";
import type { ModelSlot } from "./slot.js";
import { SERVER_VERSION } from "./version.js";

export interface ServerLimits {
  /** Largest request body in bytes (413 past it). */
  bodyLimit: number;
  /** Most pairs (or users) in one request (400 past it). */
  maxBatch: number;
  /** Most requests being worked on at once (503 past it). */
  maxInFlight: number;
  /** Longest a client may take to send a whole request, in ms (408 past it). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept, in ms. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  bodyLimit: 10 * 1024 * 1024,
  maxBatch: 100_000,
  maxInFlight: 64,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
};

const JSON_TYPE = "application/json";

/** The JSON error body, MLflow's shape, with its status. */
function sendError(reply: FastifyReply, error: ScoringError): FastifyReply {
  return reply.code(error.status).type(JSON_TYPE).send(JSON.stringify(error.toJSON()));
}

/** A content type the protocol does not take: MLflow's 415, in its words (plain text, as MLflow sends it). */
function unsupportedType(reply: FastifyReply, type: string): FastifyReply {
  return reply
    .code(415)
    .type("text/plain")
    .send(`This predictor only supports the following content types: Types: ['text/csv', 'application/json']. Got '${type}'.`);
}

/** Fastify's own refusals (body parsing, limits, schema) as MLflow's error body. */
function asScoringError(error: FastifyError): ScoringError {
  if (error instanceof ScoringError) return error;
  const status = error.statusCode ?? 500;
  if (error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || error instanceof SyntaxError)
    return new ScoringError(
      400,
      "BAD_REQUEST",
      `Invalid input. Ensure that input is a valid JSON formatted string. Error: '${error.message}'`,
    );
  if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new ScoringError(413, "RESOURCE_LIMIT_EXCEEDED", error.message);
  if (error.validation) return new ScoringError(400, "BAD_REQUEST", `Invalid input: ${error.message}`);
  if (status === 408) return new ScoringError(408, "REQUEST_TIMEOUT", error.message);
  if (status >= 400 && status < 500) return new ScoringError(status, "BAD_REQUEST", error.message);
  return new ScoringError(500, "INTERNAL_ERROR", error.message);
}

/** The pairs of an `/invocations` body, by content type (parsed JSON, or the CSV text). */
function pairsOf(request: FastifyRequest, maxBatch: number): Pairs {
  const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type === "text/csv") return pairsFromCsv(String(request.body ?? ""), maxBatch);
  return pairsFromJson(request.body, maxBatch);
}

/**
 * Scores `pairs` into `out`: all in one call when the model knows every id (the usual case), else
 * the known pairs in one call and the others by the run's cold-start rule, as `ms predict` does.
 */
function scorePairs(model: ServingModel, pairs: Pairs, out: Float64Array): void {
  const { scorer, coldStart } = model;
  const warm = warmPairs(scorer, pairs.userIds, pairs.movieIds, pairs.timestamps);
  if (!warm.cold) {
    scorer.score(pairs.userIds, pairs.movieIds, out, pairs.timestamps);
    return;
  }
  const scores = new Float64Array(warm.userIds.length);
  if (scores.length) scorer.score(warm.userIds, warm.movieIds, scores, warm.timestamps);
  for (let i = 0, w = 0; i < out.length; i++) out[i] = warm.sides[i] ? coldStart.predict(pairs.userIds[i], pairs.movieIds[i]) : scores[w++];
}

/** A predictions body written straight from the scores (no intermediate objects). */
function predictionsJson(scores: Float64Array, n: number): string {
  let s = '{"predictions": [';
  for (let i = 0; i < n; i++) {
    const v = scores[i];
    if (!Number.isFinite(v)) throw new ScoringError(500, "INTERNAL_ERROR", `the model predicted ${v} for row ${i}`);
    s += i ? `, ${v}` : `${v}`;
  }
  return `${s}]}`;
}

/** Fastify's request logging as one access line per request (its default is two: incoming and completed). */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 1000) / 1000,
      bytesIn: Number(request.headers["content-length"] ?? 0),
      remote: request.ip,
    };
    if (error) reply.log.error({ ...line, err: error }, "access");
    else reply.log.info(line, "access");
  }
}

export interface ServerDeps {
  slot: ModelSlot<ServingModel>;
  logger: Logger;
  limits: ServerLimits;
}

/** The Fastify app, its routes registered (not listening). */
export function buildServer({ slot, logger, limits }: ServerDeps) {
  const app = Fastify({
    loggerInstance: logger,
    logController: new AccessLog(),
    bodyLimit: limits.bodyLimit,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Node checks request timeouts every connectionsCheckingInterval (30 s by default): a slow
    // client would hold its socket up to 30 s past its deadline.
    serverFactory: (handler) =>
      http.createServer(
        { requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: 500, keepAliveTimeout: limits.keepAliveTimeoutMs },
        handler,
      ),
  });
  let inFlight = 0;
  // One reusable output buffer: scoring is synchronous, so no two requests use it at once.
  let scores = new Float64Array(1024);

  app.addContentTypeParser("text/csv", { parseAs: "string", bodyLimit: limits.bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return unsupportedType(reply, request.headers["content-type"] ?? "");
    const e = asScoringError(error);
    if (e.status >= 500) request.log.error({ err: error }, "request failed");
    return sendError(reply, e);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ScoringError(404, "ENDPOINT_NOT_FOUND", `no route ${request.method} ${request.url}`)),
  );
  // The bound on work at once: requests past it are refused before their body is looked at.
  const admit = (_request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (inFlight >= limits.maxInFlight) {
      void sendError(
        reply.header("retry-after", "1"),
        new ScoringError(
          503,
          "TEMPORARILY_UNAVAILABLE",
          `${inFlight} requests in progress (--max-in-flight ${limits.maxInFlight}); retry later`,
        ),
      );
      return;
    }
    inFlight++;
    reply.raw.once("close", () => inFlight--);
    done();
  };

  for (const url of ["/ping", "/health"]) app.get(url, async (_req, reply) => reply.type("application/json").send("\n"));
  app.get("/version", async (_req, reply) => reply.type("text/plain").send(SERVER_VERSION));
  app.get("/model", async () => {
    const m = slot.current;
    return { runId: m.runId, kind: m.kind, source: m.source };
  });

  app.post("/invocations", { onRequest: admit }, async (request, reply) => {
    const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (type !== JSON_TYPE && type !== "text/csv") return unsupportedType(reply, type);
    const pairs = pairsOf(request, limits.maxBatch);
    const model = slot.acquire();
    try {
      const n = pairs.userIds.length;
      if (scores.length < n) scores = new Float64Array(Math.max(n, scores.length * 2));
      const out = scores.subarray(0, n);
      scorePairs(model, pairs, out);
      return reply.type(JSON_TYPE).send(predictionsJson(out, n));
    } finally {
      slot.release(model);
    }
  });

  app.post<{ Body: RecommendRequest }>("/recommend", { onRequest: admit, schema: { body: RecommendBody } }, async (request) => {
    const model = slot.acquire();
    try {
      return recommendFor(model, request.body, limits.maxBatch);
    } finally {
      slot.release(model);
    }
  });
  return app;
}
