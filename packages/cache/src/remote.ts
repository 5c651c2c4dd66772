/**
 * A remote cache as the session sees it: the `RemoteStore` interface (fetch an entry into a
 * directory, push a published one, list what is there), what moves through it, and the entry
 * record every remote stores per key (`ms-remote-entry/1`: the entry's description, its manifest
 * and the digest of every file, optionally signed). A record is usable only when it is the result
 * of its key: the key recomputed from what it claims (`keyAgreementProblems`) must be the key it
 * is stored under, and with a signing key it must carry that key's signature. @ms/cache-s3
 * implements the store on S3; this package knows no storage service.
 */
import { unsafeArtifactPath, type Manifest } from "@ms/contracts";
import * as v from "valibot";
import { ENTRY_FILE } from "./entries.js";
import { keyAgreementProblems } from "./key.js";
import { EntryInfoSchema, type EntryInfo } from "./schemas.js";
import { SignatureSchema, signatureProblems, type RecordSigningKey } from "./signing.js";

export const REMOTE_RECORD_FORMAT = "ms-remote-entry/1";

/** The largest entry record read (a record lists a few files and parameters: a few KiB); a larger one is damage. */
export const MAX_RECORD_BYTES = 1 << 20;

const RemoteFileSchema = v.object({
  path: v.string(),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
});

/** One file of an entry as the record lists it. */
export type RemoteFile = v.InferOutput<typeof RemoteFileSchema>;

/** The entry record of one key. */
export const RemoteRecordSchema = v.object({
  format: v.literal(REMOTE_RECORD_FORMAT),
  key: v.string(),
  step: v.string(),
  /** entry.json as published, without what only holds on the pushing machine (file identities, last use). */
  entry: v.omit(EntryInfoSchema, ["identities", "lastUsedAt"]),
  manifest: v.looseObject({ kind: v.string() }),
  files: v.pipe(v.array(RemoteFileSchema), v.minLength(1)),
  pushedAt: v.string(),
  /** Present when a writer with a signing key pushed it (see signing.ts). */
  signature: v.optional(SignatureSchema),
});

export type RemoteRecord = v.InferOutput<typeof RemoteRecordSchema>;

export type RemoteFetch =
  | { status: "hit"; record: RemoteRecord; bytes: number }
  | { status: "missing" }
  | { status: "bad"; problems: string[] }
  | { status: "unavailable" };

export interface RemoteTransfer {
  direction: "down" | "up";
  bytes: number;
  /** Blobs actually sent (a push skips those already there). */
  blobs: number;
  seconds: number;
}

export interface RemoteEntrySummary {
  key: string;
  step: string;
  bytes: number;
  pushedAt: string | null;
  producedByRun: string | null;
  params: Record<string, unknown>;
  outputDigest: string | null;
}

/** A shared cache behind the local one: what a session needs of it. */
export interface RemoteStore {
  /** Where it is, for messages (no credentials). */
  readonly url: string;
  readonly canRead: boolean;
  readonly canWrite: boolean;
  /** Why it is not used any more in this process (undefined while it is). */
  readonly unavailable: string | undefined;
  /** The entry of `key` into `dir` (which must not exist), every file checked against the record. */
  fetchEntry(key: string, dir: string, signal?: AbortSignal): Promise<RemoteFetch>;
  /** A published local entry; undefined when the remote is not used (read mode, down). */
  pushEntry(dir: string, entry: EntryInfo, manifest: Manifest, signal?: AbortSignal): Promise<RemoteTransfer | undefined>;
  /** Every entry record, newest push first; unreadable ones are listed as step "?". */
  listEntries(signal?: AbortSignal): Promise<RemoteEntrySummary[]>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** Problems of the file list (paths inside the entry, no entry.json, no duplicates, a manifest). */
function fileProblems(files: unknown[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    const file = isObject(f) ? f : {};
    const name = String(file.path);
    const bad = unsafeArtifactPath(file.path);
    if (bad) problems.push(bad);
    else if (file.path === ENTRY_FILE) problems.push(`lists ${ENTRY_FILE}`);
    else if (seen.has(name)) problems.push(`lists ${name} twice`);
    if (typeof file.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(file.sha256)) problems.push(`${name}: no sha256`);
    if (typeof file.bytes !== "number" || !Number.isSafeInteger(file.bytes) || file.bytes < 0) problems.push(`${name}: no size`);
    seen.add(name);
  }
  if (!seen.has("manifest.json")) problems.push("lists no manifest.json");
  return problems;
}

/** Problems of a parsed entry record (empty: usable), checked before any blob is fetched. */
export function recordProblems(value: unknown, key: string): string[] {
  if (!isObject(value)) return ["not an entry record"];
  const problems: string[] = [];
  if (value.format !== REMOTE_RECORD_FORMAT) problems.push(`format ${JSON.stringify(value.format)}, expected ${REMOTE_RECORD_FORMAT}`);
  if (value.key !== key) problems.push(`names key ${String(value.key)}`);
  if (typeof value.step !== "string" || !isObject(value.entry) || !isObject(value.manifest))
    problems.push("has no step, entry or manifest");
  if (!Array.isArray(value.files) || value.files.length === 0) return [...problems, "lists no files"];
  problems.push(...fileProblems(value.files));
  if (problems.length) return problems;
  const parsed = v.safeParse(RemoteRecordSchema, value);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    return [`field ${v.getDotPath(issue) ?? "(the document)"}: ${issue.message}`];
  }
  const record = parsed.output;
  if (record.entry.step !== record.step) problems.push(`its entry names step ${JSON.stringify(record.entry.step)}, not ${record.step}`);
  problems.push(...keyAgreementProblems(key, record.step, record.entry, record.manifest));
  return problems;
}

/**
 * The record of `key` from its text; its problems (each prefixed with `where`) when it is not
 * usable. With `signedBy`, a record that key did not sign is not usable either.
 */
export function parseRemoteRecord(
  text: string,
  key: string,
  where: string,
  signedBy?: RecordSigningKey,
): { record: RemoteRecord } | { problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { problems: [`${where}: ${(error as Error).message}`] };
  }
  const problems = recordProblems(raw, key);
  if (!problems.length && signedBy && isObject(raw)) problems.push(...signatureProblems(raw, signedBy));
  if (problems.length) return { problems: problems.map((p) => `${where}: ${p}`) };
  return { record: v.parse(RemoteRecordSchema, raw) };
}
