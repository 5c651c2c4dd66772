/**
 * Reading a response body under three bounds, so that no server can hang a run or fill its disk:
 *
 *   idle   no byte for `idleMs` (a body that stalls halfway)       -> BodyTimeout
 *   total  the whole body not read within `totalMs` (slow-loris)     -> BodyTimeout
 *          default 2 idleMs + maxBytes / MIN_BYTES_PER_MS
 *   size   more than `maxBytes` bytes                               -> BodyTooLarge, at the first byte over
 *
 * A blob is written to its file through `writeBody` (hashed on the way); an entry record is read
 * into memory through `readBody`. Either stops the body's socket at once when a bound is crossed
 * or the run's signal aborts.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform, Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** A floor on a transfer's rate, in bytes per millisecond (256 KiB/s). */
export const MIN_BYTES_PER_MS = 256;

/** The body stalled, or took longer than its total bound (named so the store reports "timed out"). */
export class BodyTimeout extends Error {
  override readonly name = "TimeoutError";
}

/** The body holds more bytes than it may: damage, not a network failure. */
export class BodyTooLarge extends Error {}

export interface BodyBounds {
  /** What is read, for messages. */
  what: string;
  maxBytes: number;
  idleMs: number;
  /** Default: `totalBoundMs(maxBytes, idleMs)`. */
  totalMs?: number;
  signal?: AbortSignal;
}

/** The total bound of a transfer of at most `maxBytes` bytes (twice the idle bound, so a stall is reported as one). */
export function totalBoundMs(maxBytes: number, idleMs: number): number {
  return Math.ceil(2 * idleMs + maxBytes / MIN_BYTES_PER_MS);
}

/** Pipes `body` through a counting, hashing tap into `sink`, each bound armed for the whole transfer. */
async function bounded(body: Readable, sink: Writable, o: BodyBounds): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  let idle: NodeJS.Timeout | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > o.maxBytes) {
        // Not one byte more from this socket.
        body.destroy();
        done(new BodyTooLarge(`${o.what}: more than ${o.maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      armIdle();
      done(null, chunk);
    },
  });
  const stop = (error: Error) => {
    tap.destroy(error);
    body.destroy(error);
  };
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => stop(new BodyTimeout(`${o.what}: no byte for ${o.idleMs} ms after ${bytes} bytes`)), o.idleMs);
  };
  const totalMs = o.totalMs ?? totalBoundMs(o.maxBytes, o.idleMs);
  const total = setTimeout(() => stop(new BodyTimeout(`${o.what}: not read within ${totalMs} ms (${bytes} bytes so far)`)), totalMs);
  armIdle();
  try {
    await pipeline(body, tap, sink, ...(o.signal ? [{ signal: o.signal }] : []));
  } finally {
    clearTimeout(idle);
    clearTimeout(total);
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** Streams `body` into a new file `target` (flag wx); its size and sha256. */
export function writeBody(body: Readable, target: string, o: BodyBounds): Promise<{ bytes: number; sha256: string }> {
  return bounded(body, createWriteStream(target, { flags: "wx" }), o);
}

/** The whole of `body`, at most `maxBytes` bytes. */
export async function readBody(body: Readable, o: BodyBounds): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await bounded(body, sink, o);
  return Buffer.concat(chunks);
}
