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
 * first record of a key wins). A pull streams every blob through sha256 into a staging directory,
 * never past the size its record gives (a record is read to 1 MiB at most); a blob or record that
 * does not verify (or, with a signing key, is not signed by it) is reported once and is a miss, and
 * the recomputed result overwrites it on the next push. With a private signing key every record
 * pushed is signed; with a public one nothing is pushed.
 *
 * Credentials come from the AWS SDK's default chain (environment, profiles, ...); none is ever put
 * in a message: every text this module produces passes `redact`. Every call is bounded (connect
 * and idle timeouts, a deadline for small calls, an idle and a total bound on every body and
 * upload) and honours the run's AbortSignal. A remote that cannot be reached, refuses access or
 * stops sending is one warning, after which the run works with its local cache only; with
 * `required` it is a NetworkError (exit 6) instead. A local file that cannot be written while
 * pulling is a StorageError (exit 8).
 */
import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import {
  ENTRY_FILE,
  MAX_RECORD_BYTES,
  REMOTE_RECORD_FORMAT,
  loadSigningKey,
  parseRemoteRecord,
  signRecord,
  type EntryInfo,
  type RecordSigningKey,
  type RemoteEntrySummary,
  type RemoteFetch,
  type RemoteFile,
  type RemoteRecord,
  type RemoteStore,
  type RemoteTransfer,
} from "@ms/cache";
import {
  BadParameterError,
  InterruptedError,
  NetworkError,
  StorageError,
  asStorageError,
  digestFile,
  walkFiles,
  type Logger,
  type Manifest,
} from "@ms/contracts";
import { BodyTooLarge, readBody, totalBoundMs, writeBody } from "./body.js";
import { createClient, sdk, type S3Client, type S3Module } from "./client.js";
import {
  errorDetail,
  errorName,
  failureReason,
  httpStatus,
  isConditionUnsupported,
  isNotFound,
  isPreconditionFailed,
} from "./s3-errors.js";
import { checkEndpoint, parseRemoteUrl, type RemoteMode } from "./url.js";

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
  /**
   * A PEM file with an ed25519 key (default $MS_REMOTE_CACHE_SIGNING_KEY): a private key signs every
   * record pushed, and with either key only records it signed are served.
   */
  signingKey?: string;
}

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
  /** Records are signed with it (a private key) and only records it signed are served. */
  readonly signing: RecordSigningKey | undefined;
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
    this.endpoint = checkEndpoint(options.endpoint ?? (this.env.AWS_ENDPOINT_URL_S3 || this.env.AWS_ENDPOINT_URL || undefined));
    this.logger = options.logger;
    const t = options.timeoutMs ?? Number(this.env.MS_REMOTE_CACHE_TIMEOUT_MS);
    this.timeoutMs = Number.isFinite(t) && t > 0 ? t : 30_000;
    const keyFile = options.signingKey ?? (this.env.MS_REMOTE_CACHE_SIGNING_KEY || undefined);
    this.signing = keyFile === undefined ? undefined : loadSigningKey(keyFile);
  }

  get canRead(): boolean {
    return this.mode !== "write";
  }

  /** A reader holding only the public key never pushes: its records could not be signed. */
  get canWrite(): boolean {
    return this.mode !== "read" && (this.signing === undefined || this.signing.privateKey !== undefined);
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
    this.client ??= createClient(this.env, this.endpoint, this.timeoutMs);
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

  /** The text of an entry record, read within the call's deadline; BodyTooLarge above MAX_RECORD_BYTES. */
  private async getText(key: string, signal: AbortSignal | undefined): Promise<string> {
    const deadline = this.callSignal(signal, true);
    const got = await this.send(
      (c, m, abortSignal) => c.send(new m.GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      deadline,
      false,
    );
    const what = `${key}: an entry record`;
    if ((got.ContentLength ?? 0) > MAX_RECORD_BYTES) {
      if (got.Body instanceof Readable) got.Body.destroy();
      throw new BodyTooLarge(`${what} of ${got.ContentLength} bytes, more than ${MAX_RECORD_BYTES}`);
    }
    if (!(got.Body instanceof Readable)) return "";
    const body = await readBody(got.Body, {
      what,
      maxBytes: MAX_RECORD_BYTES,
      idleMs: this.timeoutMs,
      totalMs: this.timeoutMs,
      signal: deadline,
    });
    this.stats.bytesDown += body.length;
    return body.toString("utf8");
  }

  /**
   * A failure of the remote itself (unreachable, access refused, timeout): thrown as a
   * NetworkError when required, else one warning and the remote is off for this process.
   * An abort by the run's signal is an InterruptedError.
   */
  private failed(error: unknown, what: string, signal: AbortSignal | undefined): void {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new InterruptedError("interrupted");
    const message = `remote cache ${this.url}${this.endpoint ? ` at ${this.endpoint}` : ""}: ${failureReason(error)} while ${what} (${this.redact(errorDetail(error))})`;
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
      if (error instanceof BodyTooLarge) return this.bad(key, [error.message]);
      if (isNotFound(error) && errorName(error) !== "NoSuchBucket") return { status: "missing" };
      this.failed(error, `reading entry ${key.slice(0, 12)}`, signal);
      return { status: "unavailable" };
    }
    const parsed = parseRemoteRecord(text, key, this.entryKey(key), this.signing);
    if ("problems" in parsed) return this.bad(key, parsed.problems);
    const { record } = parsed;
    let bytes = Buffer.byteLength(text);
    for (const file of record.files) {
      const target = path.join(dir, ...file.path.split("/"));
      await fs.mkdir(path.dirname(target), { recursive: true }).catch((error: unknown) => {
        throw asStorageError(error, target);
      });
      try {
        bytes += await this.download(file, target, signal);
      } catch (error) {
        if (error instanceof BadBlob) {
          this.badBlobs.add(file.sha256);
          return this.bad(key, [error.message]);
        }
        if (error instanceof StorageError) throw error;
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

  /**
   * Streams one blob to `target`, hashing it, never past the record's size: a size or digest other
   * than the record's is a BadBlob (a larger body is stopped at the first byte over). The body has
   * an idle bound (the timeout) and a total one (`totalBoundMs`); a file that cannot be written is
   * a StorageError (the local disk, not the remote).
   */
  private async download(file: RemoteFile, target: string, signal: AbortSignal | undefined): Promise<number> {
    const name = `${this.blobKey(file.sha256)} (${file.path})`;
    const got = await this.send(
      (c, m, abortSignal) => c.send(new m.GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(file.sha256) }), { abortSignal }),
      signal,
      false,
    );
    if (!(got.Body instanceof Readable)) throw new BadBlob(`${name}: empty response`);
    if (got.ContentLength !== undefined && got.ContentLength !== file.bytes) {
      got.Body.destroy();
      throw new BadBlob(`${name}: ${got.ContentLength} bytes, the record says ${file.bytes}`);
    }
    let written: { bytes: number; sha256: string };
    try {
      written = await writeBody(got.Body, target, { what: name, maxBytes: file.bytes, idleMs: this.timeoutMs, signal });
    } catch (error) {
      if (error instanceof BodyTooLarge) throw new BadBlob(`${error.message}, the record says ${file.bytes}`);
      const storage = asStorageError(error, target);
      if (storage instanceof StorageError) throw storage;
      throw error;
    }
    this.stats.bytesDown += written.bytes;
    if (written.bytes !== file.bytes || written.sha256 !== file.sha256)
      throw new BadBlob(
        `${name}: ${written.bytes !== file.bytes ? `${written.bytes} bytes, the record says ${file.bytes}` : `its sha256 is ${written.sha256}`}`,
      );
    return written.bytes;
  }

  /**
   * Pushes a published entry: every file's blob not already there (or found bad), then the record.
   * Resolves undefined when the remote is not used (read mode, down); a failure degrades like a fetch.
   */
  async pushEntry(dir: string, entry: EntryInfo, manifest: Manifest, signal?: AbortSignal): Promise<RemoteTransfer | undefined> {
    if (this.mode !== "read" && this.signing && !this.signing.privateKey)
      throw new BadParameterError(
        "--remote-cache-signing-key",
        `${this.signing.file} holds a public key only: pushing needs the private key (only trusted writers hold it)`,
      );
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
    const unsigned: RemoteRecord = {
      format: REMOTE_RECORD_FORMAT,
      key: entry.key,
      step: entry.step,
      entry: described,
      manifest: { ...manifest },
      files: files.map(({ path: p, sha256, bytes }) => ({ path: p, sha256, bytes })),
      pushedAt: new Date().toISOString(),
    };
    const record = this.signing ? signRecord(unsigned, this.signing) : unsigned;
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
      // The SDK's idle timeout bounds each part; this bounds the whole transfer.
      const total = setTimeout(abort, totalBoundMs(f.bytes, this.timeoutMs));
      try {
        this.stats.requests++;
        await upload.done();
      } finally {
        clearTimeout(total);
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
    const unreadable = { key, step: "?", bytes: 0, pushedAt: null, producedByRun: null, params: {}, outputDigest: null };
    let text: string;
    try {
      text = await this.getText(this.entryKey(key), signal);
    } catch (error) {
      if (error instanceof BodyTooLarge) return unreadable;
      throw error;
    }
    const parsed = parseRemoteRecord(text, key, this.entryKey(key), this.signing);
    if ("problems" in parsed) return unreadable;
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
