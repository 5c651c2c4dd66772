/**
 * What an error of the AWS SDK means for the remote cache: not found, a refused condition, a
 * server without conditional writes, or (`failureReason`) why the remote itself cannot be used.
 */

export function errorName(error: unknown): string {
  const e = error as { name?: string; Code?: string; code?: string } | undefined;
  return e?.Code ?? e?.name ?? e?.code ?? "Error";
}

export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export const isNotFound = (error: unknown) => httpStatus(error) === 404 || ["NoSuchKey", "NotFound"].includes(errorName(error));
export const isPreconditionFailed = (error: unknown) => httpStatus(error) === 412 || errorName(error) === "PreconditionFailed";
/** A server that does not implement conditional writes (the write is then unconditional: identical content). */
export const isConditionUnsupported = (error: unknown) => httpStatus(error) === 501 || errorName(error) === "NotImplemented";

/** The error's name, HTTP status and message, for a message (not yet redacted). */
export function errorDetail(error: unknown): string {
  const status = httpStatus(error);
  return `${errorName(error)}${status ? ` (HTTP ${status})` : ""}: ${(error as Error)?.message ?? String(error)}`;
}

/** Why the remote cannot be used, in a few words; the caller has ruled out an abort by the run's signal. */
export function failureReason(error: unknown): string {
  const status = httpStatus(error);
  const name = errorName(error);
  if (status === 403 || name === "AccessDenied" || name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch")
    return "access refused";
  if (status === 404 || name === "NoSuchBucket") return "no such bucket";
  if (name === "CredentialsProviderError") return "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)";
  // An abort here is the call's own deadline or a body's bound.
  if (name === "TimeoutError" || name === "RequestTimeout" || name === "AbortError") return "timed out";
  return status && status >= 400 ? "refused the request" : "unreachable";
}
