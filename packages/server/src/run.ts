/**
 * A server's life: open the model, listen, and until SIGTERM/SIGINT answer requests; on SIGHUP,
 * or every `refreshSeconds`, resolve the model source again (a registry alias may have moved, a
 * newer run may have finished) and, when it names another run, open that model and swap it in
 * (requests in progress finish on the old one). SIGTERM closes gracefully: nothing new is
 * accepted, requests in progress are answered, idle connections closed, and after `drainSeconds`
 * whatever is left is cut.
 */
import type { Logger } from "@ms/contracts";
import type { ServingModel } from "./model.js";
import { buildServer, type ServerLimits } from "./server.js";
import { ModelSlot } from "./slot.js";

/** Where the model comes from: `resolve` names the run to serve now (cheap); `open` loads its model. */
export interface ModelSource {
  resolve(): Promise<string>;
  open(runId: string): Promise<ServingModel>;
}

export interface ServeOptions {
  host: string;
  port: number;
  limits: ServerLimits;
  source: ModelSource;
  logger: Logger;
  /** Re-resolve the source this often (0: only on SIGHUP). */
  refreshSeconds: number;
  /** Longest a graceful close waits for requests in progress. */
  drainSeconds: number;
  /** Called once listening. */
  onListening?(info: ListeningInfo): void;
  /** Stops the server as SIGTERM does (tests, embedders). */
  signal?: AbortSignal;
}

export interface ListeningInfo {
  url: string;
  host: string;
  port: number;
  runId: string;
  model: string;
  source: string;
}

export interface ServeResult {
  url: string;
  runId: string;
  swaps: number;
  stoppedBy: string;
}

/** Serves until a stop signal; resolves once closed. */
export async function serve(o: ServeOptions): Promise<ServeResult> {
  const first = await o.source.open(await o.source.resolve());
  const slot = new ModelSlot(first);
  const app = buildServer({ slot, logger: o.logger, limits: o.limits });
  let swaps = 0;
  let refreshing: Promise<void> | undefined;
  const refresh = (why: string) => {
    refreshing ??= (async () => {
      try {
        const runId = await o.source.resolve();
        if (runId === slot.current.runId) {
          o.logger.debug({ runId, why }, "model source unchanged");
          return;
        }
        const next = await o.source.open(runId);
        const from = slot.current.runId;
        slot.swap(next);
        swaps++;
        o.logger.info({ from, to: runId, kind: next.kind, why }, "model swapped");
      } catch (error) {
        // The model being served stays: a registry or store that is down must not stop serving.
        o.logger.error({ err: error, why }, "model refresh failed; still serving the previous model");
      }
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };
  await app.listen({ host: o.host, port: o.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : o.port;
  const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  o.logger.info({ url, runId: first.runId, model: first.kind }, `listening on ${url}`);
  o.onListening?.({ url, host: o.host, port, runId: first.runId, model: first.kind, source: first.source });

  const onHup = () => void refresh("SIGHUP");
  process.on("SIGHUP", onHup);
  const timer = o.refreshSeconds > 0 ? setInterval(() => void refresh("period"), o.refreshSeconds * 1000) : undefined;
  timer?.unref();
  const stoppedBy = await new Promise<string>((resolve) => {
    const stop = (why: string) => resolve(why);
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    o.signal?.addEventListener("abort", () => stop("abort"), { once: true });
  });
  o.logger.info({ by: stoppedBy }, "closing: no new requests; answering those in progress");
  process.off("SIGHUP", onHup);
  if (timer) clearInterval(timer);
  const cut = setTimeout(() => {
    o.logger.warn(`requests still in progress after ${o.drainSeconds} s; closing their connections`);
    app.server.closeAllConnections();
  }, o.drainSeconds * 1000);
  cut.unref();
  await app.close();
  clearTimeout(cut);
  await refreshing;
  slot.close();
  o.logger.info({ swaps }, "closed");
  return { url, runId: slot.current.runId, swaps, stoppedBy };
}
