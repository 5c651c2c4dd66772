/**
 * HTTP downloads for datasets: streamed to disk with progress, truncation detection, and md5 +
 * sha256 computed on the way. Everything a server controls is bounded: the bytes of every body, the
 * time between two chunks (idle timeout) and the time of the whole transfer (deadline); an
 * AbortSignal (Ctrl-C in the driver) ends a transfer at once.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InterruptedError, MsError, NetworkError, asStorageError, type Logger } from "@ms/contracts";

export interface FetchOptions {
  /** Fail when no byte arrives for this long. */
  idleTimeoutMs: number;
  /** Fail when the whole transfer (headers and body) takes longer than this. */
  deadlineMs: number;
  /** Fail when the body is larger than this many bytes. */
  maxBytes: number;
  /** Ends the transfer at once; its reason is thrown (an `InterruptedError` unless it is an error of ours). */
  signal?: AbortSignal;
  logger?: Logger;
  /** Report bytes, size and rate at most twice a second (a terminal's live line), not only every 8 MiB. */
  progress?: boolean;
}

/**
 * Defaults: the largest MovieLens archive (ml-32m) is about 240 MB, so 2 GiB leaves room for any
 * release and still stops an endless body; an `.md5` file is one line.
 */
export const DOWNLOAD_DEFAULTS = {
  idleTimeoutMs: 30_000,
  deadlineMs: 60 * 60_000,
  maxBytes: 2 * 1024 ** 3,
  md5MaxBytes: 4096,
  md5DeadlineMs: 60_000,
} as const;

export interface Fetched {
  bytes: number;
  md5: string;
  sha256: string;
}

const OFFLINE_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

/** Why our own controller aborted a transfer; what the signal's reason is tells them apart. */
class Stop {
  constructor(
    readonly kind: "idle" | "deadline" | "too-large" | "signal",
    readonly cause?: unknown,
  ) {}
}

function describeFailure(url: string, error: unknown, stop: Stop | undefined, options: FetchOptions): Error {
  if (error instanceof MsError) return error;
  if (stop?.kind === "idle") return new NetworkError(`${url}: no data for ${options.idleTimeoutMs} ms; timed out`, { cause: error });
  if (stop?.kind === "deadline")
    return new NetworkError(`${url}: not complete after ${options.deadlineMs} ms (the transfer deadline); timed out`, { cause: error });
  // The error the size check made, whichever reached the pipeline first: it or the abort it caused.
  if (stop?.kind === "too-large")
    return stop.cause instanceof MsError
      ? stop.cause
      : new NetworkError(`${url}: more than ${options.maxBytes} bytes; refusing to read further`, { cause: error });
  if (stop?.kind === "signal") return stop.cause instanceof MsError ? stop.cause : new InterruptedError(`${url}: download interrupted`);
  const err = error as Error & { cause?: { code?: string } };
  const cause = err.cause as { code?: string; errors?: { code?: string }[] } | undefined;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  const detail = code ?? err.message;
  // Any failure below HTTP (no route, refused, reset, DNS) is what being offline looks like here.
  const offline = code !== undefined && OFFLINE_CODES.has(code);
  return new NetworkError(
    `${url}: download failed (${detail})${offline ? "; offline? use a local mirror (--data-dir / MS_DATASETS_DIR) or --dataset synthetic" : ""}`,
    { cause: error },
  );
}

/** One transfer: a controller that the idle timer, the deadline, the size cap and the caller's signal all abort. */
class Transfer {
  readonly controller = new AbortController();
  stop: Stop | undefined;
  private idle: NodeJS.Timeout | undefined;
  private readonly deadline: NodeJS.Timeout;
  private readonly onAbort = () => this.abort(new Stop("signal", this.options.signal?.reason));

  constructor(
    readonly url: string,
    readonly options: FetchOptions,
  ) {
    this.deadline = setTimeout(() => this.abort(new Stop("deadline")), options.deadlineMs);
    this.arm();
    if (options.signal?.aborted) this.onAbort();
    else options.signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  abort(stop: Stop): void {
    if (this.stop) return;
    this.stop = stop;
    this.controller.abort(stop);
  }

  /** Restarts the idle timer; called on every chunk. */
  arm(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.abort(new Stop("idle")), this.options.idleTimeoutMs);
  }

  close(): void {
    clearTimeout(this.idle);
    clearTimeout(this.deadline);
    this.options.signal?.removeEventListener("abort", this.onAbort);
  }

  fail(error: unknown): Error {
    return describeFailure(this.url, error, this.stop, this.options);
  }

  async open(): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.url, { signal: this.controller.signal, redirect: "follow" });
    } catch (error) {
      throw this.fail(error);
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new NetworkError(`${this.url}: HTTP ${response.status} ${response.statusText}`.trim());
    }
    const length = Number(response.headers.get("content-length") ?? NaN);
    if (Number.isFinite(length) && length > this.options.maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw new NetworkError(
        `${this.url}: ${length} bytes announced, more than the limit of ${this.options.maxBytes}; refusing to download`,
      );
    }
    return response;
  }
}

/** A small text body (an `.md5` file), read up to `maxBytes`. */
export async function fetchText(url: string, options: FetchOptions): Promise<string> {
  const transfer = new Transfer(url, options);
  try {
    const response = await transfer.open();
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of Readable.fromWeb(response.body as import("node:stream/web").ReadableStream)) {
        transfer.arm();
        bytes += (chunk as Buffer).length;
        if (bytes > options.maxBytes) {
          const tooLarge = new NetworkError(
            `${url}: more than ${options.maxBytes} bytes; not what this file should hold, refusing to read further`,
          );
          transfer.abort(new Stop("too-large", tooLarge));
          throw tooLarge;
        }
        chunks.push(chunk as Buffer);
      }
    } catch (error) {
      throw transfer.fail(error);
    }
    return Buffer.concat(chunks).toString("utf8");
  } finally {
    transfer.close();
  }
}

/** Streams `url` into `file` (created exclusively), hashing as it goes. */
export async function fetchToFile(url: string, file: string, options: FetchOptions): Promise<Fetched> {
  const transfer = new Transfer(url, options);
  try {
    const response = await transfer.open();
    const expected = Number(response.headers.get("content-length") ?? NaN);
    const md5 = createHash("md5");
    const sha = createHash("sha256");
    let bytes = 0;
    let nextReport = 0;
    let lastReport = 0;
    const started = performance.now();
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        transfer.arm();
        bytes += chunk.length;
        // No Content-Length (or a lying one): the cap is checked on what actually arrives.
        if (bytes > options.maxBytes) {
          const tooLarge = new NetworkError(
            `${url}: more than ${options.maxBytes} bytes (raise MS_MAX_DOWNLOAD_BYTES for a larger archive); the download was discarded`,
          );
          transfer.abort(new Stop("too-large", tooLarge));
          done(tooLarge);
          return;
        }
        md5.update(chunk);
        sha.update(chunk);
        const now = performance.now();
        if (bytes >= nextReport || (options.progress && now - lastReport >= 500)) {
          const mib = bytes / 2 ** 20;
          const pct = Number.isFinite(expected) && expected > 0 ? ` (${((100 * bytes) / expected).toFixed(0)}%)` : "";
          const rate = mib / Math.max(1e-3, (now - started) / 1000);
          options.logger?.info(
            {
              MiB: Number(mib.toFixed(1)),
              ...(Number.isFinite(expected) ? { ofMiB: Number((expected / 2 ** 20).toFixed(1)) } : {}),
              MiBps: Number(rate.toFixed(1)),
            },
            `download: ${mib.toFixed(1)} MiB${pct} at ${rate.toFixed(1)} MiB/s`,
          );
          nextReport = bytes + Math.max(8 * 2 ** 20, Number.isFinite(expected) ? expected / 10 : 0);
          lastReport = now;
        }
        done(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(response.body as import("node:stream/web").ReadableStream),
        meter,
        createWriteStream(file, { flags: "wx" }),
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code && ["EROFS", "ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM"].includes(code)) throw asStorageError(error, file);
      throw transfer.fail(error);
    }
    if (Number.isFinite(expected) && bytes !== expected) {
      throw new NetworkError(`${url}: truncated download, got ${bytes} of ${expected} bytes`);
    }
    return { bytes, md5: md5.digest("hex"), sha256: sha.digest("hex") };
  } finally {
    transfer.close();
  }
}

/** The hex digest in an `.md5` file: `<hex>  name`, or BSD style `MD5 (name) = <hex>`. */
export function parseMd5File(text: string): string | undefined {
  return text.match(/\b([a-fA-F0-9]{32})\b/)?.[1]?.toLowerCase();
}
