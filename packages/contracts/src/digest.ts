/**
 * Content digests. Everything that is cached or compared is named by sha256 of its bytes, written
 * as `sha256:<hex>` so that a digest says which function made it.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as v from "valibot";

export type Digest = `sha256:${string}`;

/** A `Digest` as read from a file: `sha256:` and 64 lowercase hex digits. */
export const DigestSchema = v.custom<Digest>(
  (input) => typeof input === "string" && /^sha256:[0-9a-f]{64}$/.test(input),
  "expected sha256: and 64 hex digits",
);

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function digestOf(data: string | Uint8Array): Digest {
  return `sha256:${sha256Hex(data)}`;
}

/** Streams a file through sha256; large reads keep it near disk speed. */
export async function digestFile(path: string): Promise<{ digest: Digest; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, bytes };
}

/**
 * JSON with object keys sorted at every depth and no whitespace, so equal values hash equally.
 * Numbers keep their type: `1` and `"1"` differ, and -0 is written as 0.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) return JSON.stringify(String(value));
    if (value === undefined) return "null";
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
}
