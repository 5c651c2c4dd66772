/**
 * Write failures of the cache directory: injected ones for tests (a `CacheFault` given to the
 * store as an option, never read from the environment), and the mapping of a real or injected
 * errno to a StorageError that says what is wrong with the directory and what to do.
 */
import { StorageError } from "@ms/contracts";

/** The store's write operations a fault can target. */
export type FaultOp = "lock" | "publish" | "touch" | "clean";

export const FAULT_ERRNOS = ["EROFS", "ENOSPC", "EDQUOT", "EACCES", "EIO"] as const;
export type FaultErrno = (typeof FAULT_ERRNOS)[number];

/** Makes the store's writes fail with `errno`: every operation, or only `op`. */
export interface CacheFault {
  errno: FaultErrno;
  op?: FaultOp | "all";
}

/** Throws the injected errno when `fault` targets `op`. */
export function injectFault(fault: CacheFault | undefined, op: FaultOp, target: string): void {
  if (!fault) return;
  const only = fault.op ?? "all";
  if (only !== "all" && only !== op) return;
  throw Object.assign(new Error(`${fault.errno}: injected fault, ${op} '${target}'`), { code: fault.errno });
}

/** The errno of a failed file-system call, if it has one. */
export function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

/** A StorageError naming the cache directory when `error` says it is unusable; else `error` itself. */
export function storageError(error: unknown, target: string, root: string): unknown {
  const errno = errnoCode(error);
  if (errno === "ENOTDIR" || errno === "EEXIST") {
    return new StorageError(
      `the cache directory ${root} is not a directory (${errno} at ${target}); point --cache-dir or MS_CACHE_DIR at a directory`,
      { cause: error },
    );
  }
  if (errno && ((FAULT_ERRNOS as readonly string[]).includes(errno) || errno === "EPERM" || errno === "EFBIG")) {
    const why =
      errno === "EROFS" ? "is read-only" : errno === "ENOSPC" || errno === "EDQUOT" || errno === "EFBIG" ? "is full" : "cannot be written";
    return new StorageError(
      `the cache directory ${root} ${why} (${errno} writing ${target}); free space, fix its permissions, or choose another with --cache-dir or MS_CACHE_DIR`,
      { cause: error },
    );
  }
  return error;
}
