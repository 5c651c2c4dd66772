/**
 * What `--remote-cache` and `--remote-cache-mode` may say: `s3://BUCKET[/PREFIX]` (no
 * credentials, no port: those come from the AWS chain and the endpoint) and read, write or
 * readwrite; and what `--remote-cache-endpoint` may (an http(s) URL without credentials).
 */
import { BadParameterError } from "@ms/contracts";

export const REMOTE_MODES = ["read", "write", "readwrite"] as const;
export type RemoteMode = (typeof REMOTE_MODES)[number];

/** Parses `s3://BUCKET[/PREFIX]` (PREFIX normalised to end with `/`, or empty). */
export function parseRemoteUrl(raw: string, flag = "--remote-cache"): { bucket: string; prefix: string; url: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(raw.trim());
  // Never echo a URL that may hold credentials (user:secret@...).
  if (!m) throw new BadParameterError(flag, raw.includes("@") ? "is not s3://BUCKET/PREFIX" : `"${raw}" is not s3://BUCKET/PREFIX`);
  const bucket = m[1];
  if (bucket.includes("@") || bucket.includes(":"))
    throw new BadParameterError(
      flag,
      "must not hold credentials or a port: give s3://BUCKET/PREFIX, credentials through the AWS variables or profiles, the server through AWS_ENDPOINT_URL",
    );
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new BadParameterError(flag, `"${bucket}" is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')`);
  const parts = (m[2] ?? "").split("/").filter((p) => p !== "");
  if (parts.some((p) => p === "." || p === "..")) throw new BadParameterError(flag, `the prefix of "${raw}" has a . or .. segment`);
  const prefix = parts.length ? `${parts.join("/")}/` : "";
  return { bucket, prefix, url: `s3://${bucket}/${prefix}` };
}

export function parseRemoteMode(raw: string | undefined, flag = "--remote-cache-mode"): RemoteMode {
  const mode = raw ?? "readwrite";
  const found = REMOTE_MODES.find((m) => m === mode);
  if (found === undefined) throw new BadParameterError(flag, `"${mode}" is not one of ${REMOTE_MODES.join(", ")}`);
  return found;
}

/** The endpoint URL, refused (never echoed) when it holds credentials or is not http(s). */
export function checkEndpoint(endpoint: string | undefined, flag = "--remote-cache-endpoint"): string | undefined {
  if (endpoint === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new BadParameterError(flag, "is not a URL (http://host:port)");
  }
  if (u.username || u.password)
    throw new BadParameterError(flag, "must not hold credentials; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile");
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new BadParameterError(flag, `${u.protocol} is not http: or https:`);
  return endpoint;
}
