/**
 * @ms/cache's RemoteStore on S3-compatible object storage (`--remote-cache s3://BUCKET/PREFIX`):
 *
 *   PREFIX/blobs/sha256/ab/<digest>   one file's bytes, named by their sha256 (shared across entries)
 *   PREFIX/entries/<key>.json         the entry record (@ms/cache's RemoteRecordSchema): the entry's
 *                                     description, its manifest and the digest of every file
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
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  ENTRY_FILE,
  REMOTE_RECORD_FORMAT,
  parseRemoteRecord,
  type EntryInfo,
  type RemoteEntrySummary,
  type RemoteFetch,
  type RemoteFile,
  type RemoteRecord,
  type RemoteStore,
  type RemoteTransfer,
} from "@ms/cache";
import { BadParameterError, InterruptedError, NetworkError, digestFile, walkFiles, type Logger, type Manifest } from "@ms/contracts";
import { parseRemoteUrl, type RemoteMode } from "./url.js";

/**
 * The SDK, loaded on first use (a run without a remote cache never loads it). It warns on stderr
 * about Node 20, which this package supports; the warning would break the bins' JSON-lines
 * stderr, so it is turned off unless the user has chosen.
 */
const sdk = () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  return import("@aws-sdk/client-s3");
};
type S3Module = typeof import("@aws-sdk/client-s3");
type S3Client = InstanceType<S3Module["S3Client"]>;

export interface S3RemoteStoreOptions {
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

/** The remote step cache on S3-compatible object storage. */
export class S3RemoteStore implements RemoteStore {
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

  constructor(options: S3RemoteStoreOptions) {
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
      if (u.username || u.password)
        throw new BadParameterError(
          "--remote-cache-endpoint",
          "must not hold credentials; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile",
        );
      if (u.protocol !== "http:" && u.protocol !== "https:")
        throw new BadParameterError("--remote-cache-endpoint", `${u.protocol} is not http: or https:`);
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
          ? {
              accessKeyId: e.AWS_ACCESS_KEY_ID,
              secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
              ...(e.AWS_SESSION_TOKEN ? { sessionToken: e.AWS_SESSION_TOKEN } : {}),
            }
          : undefined;
      return new S3Client({
        ...(region ? { region } : {}),
        ...(credentials ? { credentials } : {}),
        ...(this.endpoint ? { endpoint: this.endpoint, forcePathStyle: true } : {}),
        // Connect and idle (socket) timeouts bound every call, transfers included.
        requestHandler: {
          connectionTimeout: Math.min(this.timeoutMs, 10_000),
          requestTimeout: this.timeoutMs,
          throwOnRequestTimeout: true,
        },
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

  /** One call of the SDK: `run` sends its command with the call's AbortSignal. */
  private async send<T>(
    run: (client: S3Client, m: S3Module, abortSignal: AbortSignal | undefined) => Promise<T>,
    signal: AbortSignal | undefined,
    deadline = true,
  ): Promise<T> {
    const [client, m] = await Promise.all([this.s3(), sdk()]);
    this.stats.requests++;
    return run(client, m, this.callSignal(signal, deadline));
  }

  /** The text of a small object (an entry record). */
  private async getText(key: string, signal: AbortSignal | undefined): Promise<string> {
    const got = await this.send(
      (c, m, abortSignal) => c.send(new m.GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      signal,
    );
    return (await got.Body?.transformToString()) ?? "";
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
      this.logger?.warn(
        { remote: this.url },
        `${message}; continuing with the local cache only (--remote-cache-required makes this an error)`,
      );
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
      text = await this.getText(this.entryKey(key), signal);
    } catch (error) {
      if (isNotFound(error) && errorName(error) !== "NoSuchBucket") return { status: "missing" };
      this.failed(error, `reading entry ${key.slice(0, 12)}`, signal);
      return { status: "unavailable" };
    }
    this.stats.bytesDown += Buffer.byteLength(text);
    const parsed = parseRemoteRecord(text, key, this.entryKey(key));
    if ("problems" in parsed) return this.bad(key, parsed.problems);
    const { record } = parsed;
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
    const got = await this.send(
      (c, m, abortSignal) => c.send(new m.GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(file.sha256) }), { abortSignal }),
      signal,
      false,
    );
    if (!(got.Body instanceof Readable)) throw new BadBlob(`${this.blobKey(file.sha256)} (${file.path}): empty response`);
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
    if (n !== file.bytes || hex !== file.sha256)
      throw new BadBlob(
        `${this.blobKey(file.sha256)} (${file.path}): ${n !== file.bytes ? `${n} bytes, the record says ${file.bytes}` : `its sha256 is ${hex}`}`,
      );
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
      manifest: { ...manifest },
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
      const head = await this.send(
        (c, m, abortSignal) => c.send(new m.HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(f.sha256) }), { abortSignal }),
        signal,
      );
      return head.ContentLength === f.bytes;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** A small object, conditional on absence where the server supports it; a refused condition leaves the other writer's. */
  private async putSmall(key: string, body: string, ifAbsent: boolean, signal: AbortSignal | undefined): Promise<void> {
    const put = (conditional: boolean) =>
      this.send(
        (c, m, abortSignal) =>
          c.send(
            new m.PutObjectCommand({
              Bucket: this.bucket,
              Key: key,
              Body: body,
              ContentType: "application/json",
              ...(conditional ? { IfNoneMatch: "*" } : {}),
            }),
            { abortSignal },
          ),
        signal,
      );
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
        params: {
          Bucket: this.bucket,
          Key: this.blobKey(f.sha256),
          Body: createReadStream(f.full),
          ContentLength: f.bytes,
          ...(conditional ? { IfNoneMatch: "*" } : {}),
        },
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
        const page = await this.send(
          (c, m, abortSignal) =>
            c.send(new m.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.prefix}entries/`, ContinuationToken: token }), {
              abortSignal,
            }),
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
      throw new NetworkError(
        this.redact(
          `remote cache ${this.url}: cannot list entries (${errorName(error)}${httpStatus(error) ? `, HTTP ${httpStatus(error)}` : ""}: ${(error as Error).message})`,
        ),
      );
    }
    return out.sort((a, b) => (b.pushedAt ?? "").localeCompare(a.pushedAt ?? ""));
  }

  private async summary(key: string, signal: AbortSignal | undefined): Promise<RemoteEntrySummary> {
    const parsed = parseRemoteRecord(await this.getText(this.entryKey(key), signal), key, this.entryKey(key));
    if ("problems" in parsed) return { key, step: "?", bytes: 0, pushedAt: null, producedByRun: null, params: {}, outputDigest: null };
    const r = parsed.record;
    return {
      key,
      step: r.step,
      bytes: r.files.reduce((n, f) => n + f.bytes, 0),
      pushedAt: r.pushedAt,
      producedByRun: r.entry.producedByRun,
      params: r.entry.params,
      outputDigest: r.entry.outputDigest || null,
    };
  }
}
