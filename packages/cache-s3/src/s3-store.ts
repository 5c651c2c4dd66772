/**
 * The shared step cache on S3-compatible object storage (`--remote-cache s3://BUCKET/PREFIX`):
 *
 *   PREFIX/blobs/sha256/ab/<digest>   one file's bytes, named by their sha256 (shared across entries)
 *   PREFIX/entries/<key>.json         the entry record: the entry's description, its manifest and
 *                                     the digest of every file (the manifest, metrics.json, outputs)
 *
 * A push uploads the blobs first and the entry record last, so a reader never finds a record whose
 * blobs are missing; both are written with `If-None-Match: *` where the server supports it, and a
 * refused condition means another writer put the same content (blobs are content-addressed; the
 * first record of a key wins). A pull streams every blob through sha256 into a staging directory;
 * a blob or record that does not verify is reported once and is a miss, and the recomputed result
 * overwrites it on the next push.
 *
 * Credentials come from the AWS SDK's default chain (environment, profiles, ...); none is ever put
 * in a message: every text this module produces passes `redact`. Every call is bounded (connect
 * and idle timeouts, an overall deadline for small calls) and honours the run's AbortSignal. A
 * remote that cannot be reached or refuses access is one warning, after which the run works with
 * its local cache only; with `required` it is a NetworkError (exit 6) instead.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, promises as fs } from "node:fs";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BadParameterError, InterruptedError, NetworkError, digestFile, unsafeArtifactPath, walkFiles, type Logger, type Manifest } from "@ms/contracts";
import type { EntryInfo } from "./storage.js";

/**
 * The SDK, loaded on first use (a run without a remote cache never loads it). It warns on stderr
 * about Node 20, which this package supports; the warning would break the bins' JSON-lines
 * stderr, so it is turned off unless the user has chosen.
 */
const sdk = () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  return import("@aws-sdk/client-s3");
};
type S3Client = import("@aws-sdk/client-s3").S3Client;

export const REMOTE_MODES = ["read", "write", "readwrite"] as const;
export type RemoteMode = (typeof REMOTE_MODES)[number];
export const REMOTE_RECORD_FORMAT = "ms-remote-entry/1";
const ENTRY_FILE = "entry.json";

export interface RemoteCacheOptions {
  /** `s3://BUCKET[/PREFIX]`. */
  url: string;
  mode?: RemoteMode;
  /** Fail (NetworkError) instead of degrading to local work when the remote is unusable. */
  required?: boolean;
  /** An S3-compatible endpoint (default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL); path-style addressing then. */
  endpoint?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Deadline of one small call and idle timeout of a transfer (default $MS_REMOTE_CACHE_TIMEOUT_MS, else 30 s). */
  timeoutMs?: number;
}

/** One file of an entry as the record lists it. */
export interface RemoteFile {
  path: string;
  sha256: string;
  bytes: number;
}

/** PREFIX/entries/<key>.json. */
export interface RemoteRecord {
  format: typeof REMOTE_RECORD_FORMAT;
  key: string;
  step: string;
  /** entry.json as published, without what only holds on the pushing machine (file identities, last use). */
  entry: Omit<EntryInfo, "identities" | "lastUsedAt">;
  manifest: Manifest;
  files: RemoteFile[];
  pushedAt: string;
}

export type RemoteFetch = { status: "hit"; record: RemoteRecord; bytes: number } | { status: "missing" } | { status: "bad"; problems: string[] } | { status: "unavailable" };

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

/** Parses `s3://BUCKET[/PREFIX]` (PREFIX normalised to end with `/`, or empty). */
export function parseRemoteUrl(raw: string, flag = "--remote-cache"): { bucket: string; prefix: string; url: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(raw.trim());
  // Never echo a URL that may hold credentials (user:secret@...).
  if (!m) throw new BadParameterError(flag, raw.includes("@") ? "is not s3://BUCKET/PREFIX" : `"${raw}" is not s3://BUCKET/PREFIX`);
  const bucket = m[1];
  if (bucket.includes("@") || bucket.includes(":")) throw new BadParameterError(flag, "must not hold credentials or a port: give s3://BUCKET/PREFIX, credentials through the AWS variables or profiles, the server through AWS_ENDPOINT_URL");
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new BadParameterError(flag, `"${bucket}" is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')`);
  const parts = (m[2] ?? "").split("/").filter((p) => p !== "");
  if (parts.some((p) => p === "." || p === "..")) throw new BadParameterError(flag, `the prefix of "${raw}" has a . or .. segment`);
  const prefix = parts.length ? `${parts.join("/")}/` : "";
  return { bucket, prefix, url: `s3://${bucket}/${prefix}` };
}

export function parseRemoteMode(raw: string | undefined, flag = "--remote-cache-mode"): RemoteMode {
  const mode = raw ?? "readwrite";
  if (!(REMOTE_MODES as readonly string[]).includes(mode)) throw new BadParameterError(flag, `"${mode}" is not one of ${REMOTE_MODES.join(", ")}`);
  return mode as RemoteMode;
}

/** A digest that the record could name as a blob. */
const HEX64 = /^[0-9a-f]{64}$/;

/** Problems of a parsed entry record (empty: usable), checked before any blob is fetched. */
export function recordProblems(value: unknown, key: string): string[] {
  const r = value as Partial<RemoteRecord> | null;
  if (!r || typeof r !== "object") return ["not an entry record"];
  const problems: string[] = [];
  if (r.format !== REMOTE_RECORD_FORMAT) problems.push(`format ${JSON.stringify(r.format)}, expected ${REMOTE_RECORD_FORMAT}`);
  if (r.key !== key) problems.push(`names key ${String(r.key)}`);
  if (typeof r.step !== "string" || !r.entry || typeof r.entry !== "object" || !r.manifest || typeof r.manifest !== "object") problems.push("has no step, entry or manifest");
  if (!Array.isArray(r.files) || r.files.length === 0) return [...problems, "lists no files"];
  const seen = new Set<string>();
  for (const f of r.files as unknown[]) {
    const file = f as Partial<RemoteFile>;
    const bad = unsafeArtifactPath(file?.path);
    if (bad) problems.push(bad);
    else if (file.path === ENTRY_FILE) problems.push(`lists ${ENTRY_FILE}`);
    else if (seen.has(file.path as string)) problems.push(`lists ${String(file.path)} twice`);
    if (typeof file?.sha256 !== "string" || !HEX64.test(file.sha256)) problems.push(`${String(file?.path)}: no sha256`);
    if (!Number.isSafeInteger(file?.bytes) || (file.bytes as number) < 0) problems.push(`${String(file?.path)}: no size`);
    seen.add(String(file?.path));
  }
  if (!seen.has("manifest.json")) problems.push("lists no manifest.json");
  return problems;
}

function errorName(error: unknown): string {
  const e = error as { name?: string; Code?: string; code?: string } | undefined;
  return e?.Code ?? e?.name ?? e?.code ?? "Error";
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

const isNotFound = (error: unknown) => httpStatus(error) === 404 || ["NoSuchKey", "NotFound"].includes(errorName(error));
const isPreconditionFailed = (error: unknown) => httpStatus(error) === 412 || errorName(error) === "PreconditionFailed";
/** A server that does not implement conditional writes (the write is then unconditional: identical content). */
const isConditionUnsupported = (error: unknown) => httpStatus(error) === 501 || errorName(error) === "NotImplemented";

/** A blob whose bytes differ from its name: the record's entry is bad, not the remote. */
class BadBlob extends Error {}

export class RemoteCache {
  readonly bucket: string;
  readonly prefix: string;
  /** `s3://BUCKET/PREFIX/` (no credentials). */
  readonly url: string;
  readonly mode: RemoteMode;
  readonly required: boolean;
  readonly endpoint: string | undefined;
  private readonly logger: Logger | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly timeoutMs: number;
  private client: Promise<S3Client> | undefined;
  /** Set after the first failure: the rest of the run works locally, with one warning. */
  private down: string | undefined;
  private conditional = true;
  /** Entries and blobs found bad by this process: a push rewrites them unconditionally. */
  private readonly badKeys = new Set<string>();
  private readonly badBlobs = new Set<string>();
  readonly stats = { bytesDown: 0, bytesUp: 0, requests: 0 };

  constructor(options: RemoteCacheOptions) {
    const { bucket, prefix, url } = parseRemoteUrl(options.url);
    this.bucket = bucket;
    this.prefix = prefix;
    this.url = url;
    this.mode = options.mode ?? "readwrite";
    this.required = options.required === true;
    this.env = options.env ?? process.env;
    const endpoint = options.endpoint ?? (this.env.AWS_ENDPOINT_URL_S3 || this.env.AWS_ENDPOINT_URL || undefined);
    if (endpoint !== undefined) {
      let u: URL;
      try {
        u = new URL(endpoint);
      } catch {
        throw new BadParameterError("--remote-cache-endpoint", "is not a URL (http://host:port)");
      }
      if (u.username || u.password) throw new BadParameterError("--remote-cache-endpoint", "must not hold credentials; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile");
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new BadParameterError("--remote-cache-endpoint", `${u.protocol} is not http: or https:`);
    }
    this.endpoint = endpoint;
    this.logger = options.logger;
    const t = options.timeoutMs ?? Number(this.env.MS_REMOTE_CACHE_TIMEOUT_MS);
    this.timeoutMs = Number.isFinite(t) && t > 0 ? t : 30_000;
  }

  get canRead(): boolean {
    return this.mode !== "write";
  }

  get canWrite(): boolean {
    return this.mode !== "read";
  }

  /** Why the remote is not used any more in this process (undefined while it is). */
  get unavailable(): string | undefined {
    return this.down;
  }

  /** Removes every credential value of the environment from a text. */
  redact(text: string): string {
    let out = text;
    for (const name of ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"]) {
      const v = this.env[name];
      if (v && v.length >= 4) out = out.split(v).join("***");
    }
    return out;
  }

  private blobKey(hex: string): string {
    return `${this.prefix}blobs/sha256/${hex.slice(0, 2)}/${hex}`;
  }

  private entryKey(key: string): string {
    return `${this.prefix}entries/${key}.json`;
  }

  private s3(): Promise<S3Client> {
    this.client ??= sdk().then(({ S3Client }) => {
      const region = this.env.AWS_REGION || this.env.AWS_DEFAULT_REGION || (this.endpoint ? "us-east-1" : undefined);
      // An explicit environment (the library's `env` option) carries its own keys; else the SDK's default chain.
      const e = this.env;
      const credentials =
        e !== process.env && e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
          ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY, ...(e.AWS_SESSION_TOKEN ? { sessionToken: e.AWS_SESSION_TOKEN } : {}) }
          : undefined;
      return new S3Client({
        ...(region ? { region } : {}),
        ...(credentials ? { credentials } : {}),
        ...(this.endpoint ? { endpoint: this.endpoint, forcePathStyle: true } : {}),
        // Connect and idle (socket) timeouts bound every call, transfers included.
        requestHandler: { connectionTimeout: Math.min(this.timeoutMs, 10_000), requestTimeout: this.timeoutMs, throwOnRequestTimeout: true },
        maxAttempts: 2,
        // Our own sha256 checks every blob; optional CRC trailers are not understood by every S3-compatible server.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      });
    });
    return this.client;
  }

  /** An AbortSignal for one call: the run's signal, and a deadline for small calls. */
  private callSignal(signal: AbortSignal | undefined, deadline: boolean): AbortSignal | undefined {
    const signals = [signal, deadline ? AbortSignal.timeout(this.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    return signals.length ? AbortSignal.any(signals) : undefined;
  }

  private async send<T>(make: (m: typeof import("@aws-sdk/client-s3")) => object, signal: AbortSignal | undefined, deadline = true): Promise<T> {
    const [client, m] = await Promise.all([this.s3(), sdk()]);
    this.stats.requests++;
    // One generic call for every command; each caller names the output fields it reads.
    const send = client.send.bind(client) as unknown as (command: object, options: { abortSignal?: AbortSignal }) => Promise<unknown>;
    return (await send(make(m), { abortSignal: this.callSignal(signal, deadline) })) as T;
  }

  /**
   * A failure of the remote itself (unreachable, access refused, timeout): thrown as a
   * NetworkError when required, else one warning and the remote is off for this process.
   * An abort by the run's signal is an InterruptedError.
   */
  private failed(error: unknown, what: string, signal: AbortSignal | undefined): void {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError("interrupted");
    const status = httpStatus(error);
    const detail = this.redact(`${errorName(error)}${status ? ` (HTTP ${status})` : ""}: ${(error as Error)?.message ?? String(error)}`);
    const name = errorName(error);
    const why =
      status === 403 || name === "AccessDenied" || name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch"
        ? "access refused"
        : status === 404 || name === "NoSuchBucket"
          ? "no such bucket"
          : name === "CredentialsProviderError"
            ? "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            : // The run's signal was handled above, so an abort here is the call's own deadline.
              name === "TimeoutError" || name === "RequestTimeout" || name === "AbortError"
              ? "timed out"
              : status && status >= 400
                ? "refused the request"
                : "unreachable";
    const message = `remote cache ${this.url}${this.endpoint ? ` at ${this.endpoint}` : ""}: ${why} while ${what} (${detail})`;
    if (this.required) throw new NetworkError(`${message}; --remote-cache-required is set`);
    if (this.down === undefined) {
      this.down = message;
      this.logger?.warn({ remote: this.url }, `${message}; continuing with the local cache only (--remote-cache-required makes this an error)`);
    }
  }

  /**
   * Fetches the entry of `key` into `dir` (which must not exist): the record, then every blob,
   * each streamed through sha256 and checked against the record before the next.
   */
  async fetchEntry(key: string, dir: string, signal?: AbortSignal): Promise<RemoteFetch> {
    if (this.down !== undefined || !this.canRead) return { status: "unavailable" };
    let text: string;
    try {
      const got = await this.send<{ Body?: { transformToString(): Promise<string> } }>((m) => new m.GetObjectCommand({ Bucket: this.bucket, Key: this.entryKey(key) }), signal);
      text = (await got.Body?.transformToString()) ?? "";
    } catch (error) {
      if (isNotFound(error) && errorName(error) !== "NoSuchBucket") return { status: "missing" };
      this.failed(error, `reading entry ${key.slice(0, 12)}`, signal);
      return { status: "unavailable" };
    }
    this.stats.bytesDown += Buffer.byteLength(text);
    let record: RemoteRecord;
    try {
      record = JSON.parse(text) as RemoteRecord;
    } catch (error) {
      return this.bad(key, [`${this.entryKey(key)}: ${(error as Error).message}`]);
    }
    const problems = recordProblems(record, key);
    if (problems.length) return this.bad(key, problems.map((p) => `${this.entryKey(key)}: ${p}`));
    let bytes = Buffer.byteLength(text);
    await fs.mkdir(dir, { recursive: true });
    for (const file of record.files) {
      const target = path.join(dir, ...file.path.split("/"));
      await fs.mkdir(path.dirname(target), { recursive: true });
      try {
        bytes += await this.download(file, target, signal);
      } catch (error) {
        if (error instanceof BadBlob) {
          this.badBlobs.add(file.sha256);
          return this.bad(key, [error.message]);
        }
        if (isNotFound(error)) return this.bad(key, [`${this.blobKey(file.sha256)} (${file.path}): missing`]);
        this.failed(error, `downloading ${file.path} of entry ${key.slice(0, 12)}`, signal);
        return { status: "unavailable" };
      }
    }
    return { status: "hit", record, bytes };
  }

  private bad(key: string, problems: string[]): RemoteFetch {
    this.badKeys.add(key);
    return { status: "bad", problems };
  }

  /** Streams one blob to `target`, hashing it; a size or digest other than the record's is a BadBlob. */
  private async download(file: RemoteFile, target: string, signal: AbortSignal | undefined): Promise<number> {
    const got = await this.send<{ Body?: Readable }>((m) => new m.GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(file.sha256) }), signal, false);
    if (!got.Body) throw new BadBlob(`${this.blobKey(file.sha256)} (${file.path}): empty response`);
    const hash = createHash("sha256");
    let n = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        n += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(got.Body, tap, createWriteStream(target, { flags: "wx" }), ...(signal ? [{ signal }] : []));
    this.stats.bytesDown += n;
    const hex = hash.digest("hex");
    if (n !== file.bytes || hex !== file.sha256) throw new BadBlob(`${this.blobKey(file.sha256)} (${file.path}): ${n !== file.bytes ? `${n} bytes, the record says ${file.bytes}` : `its sha256 is ${hex}`}`);
    return n;
  }

  /**
   * Pushes a published entry: every file's blob not already there (or found bad), then the record.
   * Resolves undefined when the remote is not used (read mode, down); a failure degrades like a fetch.
   */
  async pushEntry(dir: string, entry: EntryInfo, manifest: Manifest, signal?: AbortSignal): Promise<RemoteTransfer | undefined> {
    if (this.down !== undefined || !this.canWrite) return undefined;
    const started = performance.now();
    const files: (RemoteFile & { full: string })[] = [];
    for (const rel of await walkFiles(dir, { skip: (name) => name === ENTRY_FILE || name.startsWith(".") })) {
      const full = path.join(dir, ...rel.split("/"));
      const { digest, bytes } = await digestFile(full);
      files.push({ path: rel, sha256: digest.slice("sha256:".length), bytes, full });
    }
    const transfer: RemoteTransfer = { direction: "up", bytes: 0, blobs: 0, seconds: 0 };
    const rewrite = this.badKeys.has(entry.key);
    const { identities: _identities, lastUsedAt: _lastUsedAt, ...described } = entry;
    const record: RemoteRecord = {
      format: REMOTE_RECORD_FORMAT,
      key: entry.key,
      step: entry.step,
      entry: described,
      manifest,
      files: files.map(({ path: p, sha256, bytes }) => ({ path: p, sha256, bytes })),
      pushedAt: new Date().toISOString(),
    };
    try {
      for (const f of files) {
        if (!this.badBlobs.has(f.sha256) && (await this.blobThere(f, signal))) continue;
        await this.upload(f, this.badBlobs.has(f.sha256), signal);
        this.badBlobs.delete(f.sha256);
        transfer.bytes += f.bytes;
        transfer.blobs++;
      }
      // Last: from here on a reader finds the entry, and every blob it names is there.
      const body = JSON.stringify(record, null, 2) + "\n";
      await this.putSmall(this.entryKey(entry.key), body, !rewrite, signal);
      this.badKeys.delete(entry.key);
      transfer.bytes += Buffer.byteLength(body);
    } catch (error) {
      this.failed(error, `pushing entry ${entry.key.slice(0, 12)} (${entry.step})`, signal);
      return undefined;
    }
    this.stats.bytesUp += transfer.bytes;
    transfer.seconds = (performance.now() - started) / 1000;
    return transfer;
  }

  /** Whether a blob is there with the expected size (its name is its digest; a pull re-checks the bytes). */
  private async blobThere(f: RemoteFile, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      const head = await this.send<{ ContentLength?: number }>((m) => new m.HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(f.sha256) }), signal);
      return head.ContentLength === f.bytes;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** A small object, conditional on absence where the server supports it; a refused condition leaves the other writer's. */
  private async putSmall(key: string, body: string, ifAbsent: boolean, signal: AbortSignal | undefined): Promise<void> {
    const put = (conditional: boolean) =>
      this.send((m) => new m.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: "application/json", ...(conditional ? { IfNoneMatch: "*" } : {}) }), signal);
    try {
      await put(ifAbsent && this.conditional);
    } catch (error) {
      if (isPreconditionFailed(error)) return;
      if (!isConditionUnsupported(error) || !ifAbsent) throw error;
      this.conditional = false;
      await put(false);
    }
  }

  /** One blob through lib-storage's Upload (multipart above 8 MiB), aborted with the run. */
  private async upload(f: RemoteFile & { full: string }, overwrite: boolean, signal: AbortSignal | undefined): Promise<void> {
    const [client, { Upload }] = await Promise.all([this.s3(), import("@aws-sdk/lib-storage")]);
    const attempt = async (conditional: boolean) => {
      const upload = new Upload({
        client,
        params: { Bucket: this.bucket, Key: this.blobKey(f.sha256), Body: createReadStream(f.full), ContentLength: f.bytes, ...(conditional ? { IfNoneMatch: "*" } : {}) },
        partSize: 8 << 20,
        queueSize: 2,
        leavePartsOnError: false,
      });
      const abort = () => void upload.abort().catch(() => undefined);
      signal?.addEventListener("abort", abort, { once: true });
      try {
        this.stats.requests++;
        await upload.done();
      } finally {
        signal?.removeEventListener("abort", abort);
      }
    };
    try {
      await attempt(!overwrite && this.conditional);
    } catch (error) {
      if (isPreconditionFailed(error)) return; // the same bytes, put by another writer
      if (!isConditionUnsupported(error) || overwrite) throw error;
      this.conditional = false;
      await attempt(false);
    }
  }

  /** The records under PREFIX/entries/ (`ms cache ls --remote`); unreadable ones are listed as step "?". */
  async listEntries(signal?: AbortSignal): Promise<RemoteEntrySummary[]> {
    const out: RemoteEntrySummary[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.send<{ Contents?: { Key?: string }[]; NextContinuationToken?: string; IsTruncated?: boolean }>(
          (m) => new m.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.prefix}entries/`, ContinuationToken: token }),
          signal,
        );
        for (const o of page.Contents ?? []) {
          const key = /([0-9a-f]{64})\.json$/.exec(o.Key ?? "")?.[1];
          if (!key) continue;
          out.push(await this.summary(key, signal));
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError("interrupted");
      throw new NetworkError(this.redact(`remote cache ${this.url}: cannot list entries (${errorName(error)}${httpStatus(error) ? `, HTTP ${httpStatus(error)}` : ""}: ${(error as Error).message})`));
    }
    return out.sort((a, b) => (b.pushedAt ?? "").localeCompare(a.pushedAt ?? ""));
  }

  private async summary(key: string, signal: AbortSignal | undefined): Promise<RemoteEntrySummary> {
    const got = await this.send<{ Body?: { transformToString(): Promise<string> } }>((m) => new m.GetObjectCommand({ Bucket: this.bucket, Key: this.entryKey(key) }), signal);
    let r: Partial<RemoteRecord> = {};
    try {
      r = JSON.parse((await got.Body?.transformToString()) ?? "") as RemoteRecord;
    } catch {
      // listed with what could be read
    }
    const ok = recordProblems(r, key).length === 0;
    return {
      key,
      step: ok ? (r.step as string) : "?",
      bytes: ok ? (r.files as RemoteFile[]).reduce((n, f) => n + f.bytes, 0) : 0,
      pushedAt: ok ? (r.pushedAt ?? null) : null,
      producedByRun: ok ? (r.entry?.producedByRun ?? null) : null,
      params: ok ? (r.entry?.params ?? {}) : {},
      outputDigest: ok ? (r.entry?.outputDigest ?? null) : null,
    };
  }
}
