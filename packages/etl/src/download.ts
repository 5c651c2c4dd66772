/**
 * HTTP downloads for datasets: streamed to disk with progress, an idle timeout (a server that stops
 * sending fails instead of hanging), truncation detection, and md5 + sha256 computed on the way.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NetworkError, asStorageError, type Logger } from "@ms/contracts";

export interface FetchOptions {
  /** Fail when no byte arrives for this long. */
  idleTimeoutMs: number;
  logger?: Logger;
}

export interface Fetched {
  bytes: number;
  md5: string;
  sha256: string;
}

const OFFLINE_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

function describeFailure(url: string, error: unknown, idleTimeoutMs: number): NetworkError {
  if (error instanceof NetworkError) return error;
  const err = error as Error & { cause?: { code?: string } };
  if (err.name === "AbortError" || err.name === "TimeoutError") {
    return new NetworkError(`${url}: no data for ${idleTimeoutMs} ms; timed out`, { cause: error });
  }
  const cause = err.cause as { code?: string; errors?: { code?: string }[] } | undefined;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  const detail = code ?? err.message;
  // Any failure below HTTP (no route, refused, reset, DNS) is what being offline looks like here.
  const offline = code !== undefined && OFFLINE_CODES.has(code);
  return new NetworkError(`${url}: download failed (${detail})${offline ? "; offline? use a local mirror (--data-dir / MS_DATASETS_DIR) or --dataset synthetic" : ""}`, { cause: error });
}

async function request(url: string, controller: AbortController, idleTimeoutMs: number): Promise<{ response: Response; arm: () => void; disarm: () => void }> {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new DOMException("idle", "TimeoutError")), idleTimeoutMs);
  };
  const disarm = () => clearTimeout(timer);
  arm();
  try {
    const response = await fetch(url, { signal: controller.signal, redirect: "follow" });
    if (!response.ok) {
      disarm();
      await response.body?.cancel().catch(() => undefined);
      throw new NetworkError(`${url}: HTTP ${response.status} ${response.statusText}`.trim());
    }
    return { response, arm, disarm };
  } catch (error) {
    disarm();
    throw describeFailure(url, error, idleTimeoutMs);
  }
}

export async function fetchText(url: string, options: FetchOptions): Promise<string> {
  const controller = new AbortController();
  const { response, disarm } = await request(url, controller, options.idleTimeoutMs);
  try {
    return await response.text();
  } catch (error) {
    throw describeFailure(url, error, options.idleTimeoutMs);
  } finally {
    disarm();
  }
}

/** Streams `url` into `file` (created exclusively), hashing as it goes. */
export async function fetchToFile(url: string, file: string, options: FetchOptions): Promise<Fetched> {
  const controller = new AbortController();
  const { response, arm, disarm } = await request(url, controller, options.idleTimeoutMs);
  const expected = Number(response.headers.get("content-length") ?? NaN);
  const md5 = createHash("md5");
  const sha = createHash("sha256");
  let bytes = 0;
  let nextReport = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      arm();
      md5.update(chunk);
      sha.update(chunk);
      bytes += chunk.length;
      if (bytes >= nextReport) {
        const pct = Number.isFinite(expected) && expected > 0 ? ` (${((100 * bytes) / expected).toFixed(0)}%)` : "";
        options.logger?.info(`download: ${(bytes / 2 ** 20).toFixed(1)} MiB${pct}`);
        nextReport = bytes + Math.max(8 * 2 ** 20, Number.isFinite(expected) ? expected / 10 : 0);
      }
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), meter, createWriteStream(file, { flags: "wx" }));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code && ["EROFS", "ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM"].includes(code)) throw asStorageError(error, file);
    throw describeFailure(url, error, options.idleTimeoutMs);
  } finally {
    disarm();
  }
  if (Number.isFinite(expected) && bytes !== expected) {
    throw new NetworkError(`${url}: truncated download, got ${bytes} of ${expected} bytes`);
  }
  return { bytes, md5: md5.digest("hex"), sha256: sha.digest("hex") };
}

/** The hex digest in an `.md5` file: `<hex>  name`, or BSD style `MD5 (name) = <hex>`. */
export function parseMd5File(text: string): string | undefined {
  return text.match(/\b([a-fA-F0-9]{32})\b/)?.[1]?.toLowerCase();
}
