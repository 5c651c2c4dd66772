/**
 * The project's error classes. Every failure a user can cause maps to one of these, and each class
 * carries the process exit code that every bin uses for it (see `exitCodeFor`).
 */

export type ErrorCode =
  | "BAD_INPUT"
  | "BAD_PARAMETER"
  | "MISSING_ARTIFACT"
  | "CORRUPT_ARTIFACT"
  | "TRACKING_UNAVAILABLE"
  | "NETWORK"
  | "STORAGE"
  | "PARTIAL"
  | "INTERRUPTED";

/** Exit codes, documented in the README; 1 is left for unexpected crashes. */
export const EXIT_CODES: Readonly<Record<ErrorCode | "USAGE" | "INTERNAL", number>> = {
  INTERNAL: 1,
  USAGE: 2,
  BAD_PARAMETER: 2,
  BAD_INPUT: 3,
  MISSING_ARTIFACT: 4,
  CORRUPT_ARTIFACT: 5,
  NETWORK: 6,
  TRACKING_UNAVAILABLE: 7,
  STORAGE: 8,
  PARTIAL: 9,
  INTERRUPTED: 130,
};

export class MsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The data handed to a step is wrong: names the file and, where known, the line. */
export class BadInputError extends MsError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, where: { file?: string; line?: number } = {}, options?: { cause?: unknown }) {
    const place = where.file ? `${where.file}${where.line !== undefined ? `:${where.line}` : ""}: ` : "";
    super("BAD_INPUT", `${place}${message}`, options);
    this.file = where.file;
    this.line = where.line;
  }
}

/** A parameter (flag, `-P key=value`, or API option) is unknown or out of range. */
export class BadParameterError extends MsError {
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super("BAD_PARAMETER", `parameter ${parameter}: ${message}`);
    this.parameter = parameter;
  }
}

export class MissingArtifactError extends MsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("MISSING_ARTIFACT", message, options);
  }
}

export class CorruptArtifactError extends MsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CORRUPT_ARTIFACT", message, options);
  }
}

export class NetworkError extends MsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NETWORK", message, options);
  }
}

export class TrackingUnavailableError extends MsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TRACKING_UNAVAILABLE", message, options);
  }
}

/** The disk refused a write (read-only, full, over a size limit). */
export class StorageError extends MsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("STORAGE", message, options);
  }
}

/**
 * A batch answered every row it could and reported the others on their rows (e.g. unknown users
 * in `ms recommend --users FILE`): the output is complete but for those rows. Raised after the
 * last row is written, so exit 9 tells a script to look at the rows' errors, not to discard the output.
 */
export class PartialFailureError extends MsError {
  readonly failed: number;
  readonly total: number;
  constructor(message: string, counts: { failed: number; total: number }) {
    super("PARTIAL", message);
    this.failed = counts.failed;
    this.total = counts.total;
  }
}

export class InterruptedError extends MsError {
  constructor(message = "interrupted") {
    super("INTERRUPTED", message);
  }
}

const STORAGE_ERRNOS = new Set(["EROFS", "ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM"]);

/** Turns an unknown thrown value into the exit code the process should end with. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof MsError) return EXIT_CODES[error.code];
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno && STORAGE_ERRNOS.has(errno)) return EXIT_CODES.STORAGE;
  return EXIT_CODES.INTERNAL;
}

/**
 * The OS's words for a full, read-only or forbidden disk: native writers (DuckDB's COPY) report
 * them only in their message, with no errno.
 */
export const STORAGE_MESSAGE = /No space left on device|Disk quota exceeded|Read-only file system|File too large|Permission denied/i;

/**
 * Wraps an error from a write so that it names the path and maps to STORAGE: a file-system errno,
 * or a native writer's I/O error whose message carries the OS's words for it.
 */
export function asStorageError(error: unknown, path: string): unknown {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno && STORAGE_ERRNOS.has(errno)) {
    return new StorageError(`cannot write ${path}: ${errno} (${(error as Error).message})`, { cause: error });
  }
  const message = error instanceof Error && !(error instanceof MsError) ? error.message : "";
  const words = message.match(STORAGE_MESSAGE);
  if (words) return new StorageError(`cannot write ${path}: ${words[0]} (${message.split("\n")[0].slice(0, 300)})`, { cause: error });
  return error;
}
