/**
 * Streamed output of the batch commands (`ms recommend --users`, `ms predict --pairs`): rows as
 * CSV (RFC 4180 quoting) or JSON lines, gathered into chunks of about 64 KiB and written to stdout
 * as they are computed. A write the stream cannot take at once is awaited ('drain'), so a slow
 * reader holds the computation back instead of letting output pile up in memory; a reader that
 * went away (EPIPE: `ms recommend --users all | head -1`) ends the batch quietly through
 * `OutputClosedError`, which the command catches. On a terminal, control characters in titles
 * are shown escaped, as every other ms output is.
 */
import type { Writable } from "node:stream";
import { terminalSafe } from "@ms/contracts";

/** The reader of stdout went away (EPIPE): the batch stops, and the command ends quietly. */
export class OutputClosedError extends Error {
  constructor() {
    super("stdout was closed by its reader");
    this.name = "OutputClosedError";
  }
}

/** Bytes gathered before a write: large enough to make writes cheap, small enough to stream. */
const CHUNK_CHARS = 1 << 16;

export class StreamOut {
  private buffer: string[] = [];
  private size = 0;
  private closed = false;
  private readonly tty: boolean;
  private readonly onError = (error: NodeJS.ErrnoException) => {
    // EPIPE (and a destroyed stream) mean the reader is gone; anything else is kept for the next write to throw.
    this.closed = true;
    if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") this.failure = error;
  };
  private failure: Error | undefined;

  constructor(private readonly stream: Writable & { isTTY?: boolean } = process.stdout) {
    this.tty = Boolean(stream.isTTY);
    stream.on("error", this.onError);
  }

  /** Appends a line (newline added); flushes when a chunk is full, awaiting the reader if it is slow. */
  async line(text: string): Promise<void> {
    this.buffer.push(text, "\n");
    this.size += text.length + 1;
    if (this.size >= CHUNK_CHARS) await this.flush();
  }

  /** Writes what is gathered; resolves when the stream can take more. */
  async flush(): Promise<void> {
    this.check();
    if (!this.size) return;
    const text = this.buffer.join("");
    this.buffer = [];
    this.size = 0;
    const ok = this.stream.write(this.tty ? terminalSafe(text) : text);
    if (!ok && !this.closed) await this.writable();
    this.check();
  }

  /** Flushes the rest and detaches from the stream; a closed reader still ends quietly. */
  async end(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.stream.off("error", this.onError);
      // A write that failed after its call returned reports here; keep swallowing EPIPE from it.
      if (this.closed) this.stream.on("error", () => undefined);
    }
  }

  /**
   * Resolves when the stream drains, closes or fails, whichever comes first (a failure is then
   * seen by `check`); the listeners are removed, so none pile up over a long batch.
   */
  private writable(): Promise<void> {
    const stream = this.stream;
    return new Promise((resolve) => {
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        stream.off("error", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
      stream.on("error", done);
    });
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed || this.stream.destroyed) throw new OutputClosedError();
  }
}

const NEEDS_QUOTES = /[",\r\n]/;

/** One CSV field, RFC 4180: quoted when it holds a comma, a quote or a line break, quotes doubled; null is empty. */
export function csvField(value: string | number | null): string {
  if (value === null) return "";
  const text = String(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A CSV record of fields. */
export function csvRecord(fields: readonly (string | number | null)[]): string {
  return fields.map(csvField).join(",");
}
