/**
 * Digests of large input files, remembered across runs. Re-hashing a 500 MB ratings file costs
 * most of a second each time; like git's index, we keep the digest beside the file's identity
 * (device, inode, size, mtime and ctime in nanoseconds) and hash again only when any of them
 * changes. ctime cannot be set back by `touch`, so an edited file is always re-hashed.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as v from "valibot";
import { type Digest, DigestSchema, digestFile, sha256Hex } from "./digest.js";
import { parseJsonFile } from "./json-file.js";

/**
 * `$MS_CACHE_DIR`, else `$XDG_CACHE_HOME/ms`, else `~/.cache/ms`: the root of every cache of the
 * project. What lies under it is @ms/cache's layout (`cacheLayout`).
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MS_CACHE_DIR) return path.resolve(env.MS_CACHE_DIR);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "ms");
}

/** `<cache>/digests/<hash of the path>.json`: what a file's identity was when it hashed to `digest`. */
const RememberedSchema = v.object({
  path: v.string(),
  identity: v.string(),
  digest: DigestSchema,
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
type Remembered = v.InferOutput<typeof RememberedSchema>;

/** What `fileIdentity` reports: the identity string plus the facts callers check beside it. */
export interface FileIdentity {
  /** `dev:ino:size:mtimeNs:ctimeNs`; equal identities mean the file was not written in between. */
  identity: string;
  bytes: number;
  isFile: boolean;
  isSymbolicLink: boolean;
  /** The later of mtime and ctime, in milliseconds (for the racy-timestamp rule). */
  changedMs: number;
}

/**
 * The one file-identity helper of the project (git's index rule). `noFollow` describes a symbolic
 * link itself instead of its target, so a caller can refuse or resolve it.
 */
export async function fileIdentity(file: string, options: { noFollow?: boolean } = {}): Promise<FileIdentity> {
  const st = options.noFollow ? await fs.lstat(file, { bigint: true }) : await fs.stat(file, { bigint: true });
  // bigint nanoseconds: Math.max does not take them.
  let changed = st.ctimeNs;
  if (st.mtimeNs > changed) changed = st.mtimeNs;
  return {
    identity: [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(":"),
    bytes: Number(st.size),
    isFile: st.isFile(),
    isSymbolicLink: st.isSymbolicLink(),
    changedMs: Number(changed / 1_000_000n),
  };
}

/**
 * How long after its last change a file's identity may be trusted. File timestamps come from a
 * coarse clock (a jiffy; a whole second on some file systems), so a file hashed in the same tick as
 * its last write could be written again without its identity changing: such a file is hashed, but
 * its identity is not remembered until it is older than this.
 */
export const RACY_IDENTITY_MS = 1000;

/** Whether an identity taken now is old enough to be remembered (see RACY_IDENTITY_MS). */
export function identityTrustworthy(id: FileIdentity, now = Date.now()): boolean {
  return now - id.changedMs > RACY_IDENTITY_MS;
}

/**
 * The sha256 of a file, reused from an earlier call when the file is provably unchanged.
 * `cached` says which. A cache that cannot be written (read-only, full) only costs the reuse.
 */
export async function digestFileRemembered(
  file: string,
  /** Where digests are remembered: the cache layout's `digests` place. */
  digestsDir: string,
): Promise<{ digest: Digest; bytes: number; cached: boolean }> {
  const abs = path.resolve(file);
  const record = path.join(digestsDir, `${sha256Hex(abs).slice(0, 40)}.json`);
  const before = await fileIdentity(abs);
  try {
    const known = await parseJsonFile(record, RememberedSchema);
    if (known.path === abs && known.identity === before.identity) return { digest: known.digest, bytes: known.bytes, cached: true };
  } catch {
    // No record, or an unreadable or corrupt one: hash (and replace it below).
  }
  const { digest, bytes } = await digestFile(abs);
  // A file that changed while it was read has no trustworthy digest to remember.
  if ((await fileIdentity(abs)).identity === before.identity) {
    const entry: Remembered = { path: abs, identity: before.identity, digest, bytes };
    const temp = `${record}.${process.pid}.tmp`;
    try {
      await fs.mkdir(path.dirname(record), { recursive: true });
      await fs.writeFile(temp, JSON.stringify(entry));
      await fs.rename(temp, record);
    } catch {
      await fs.rm(temp, { force: true }).catch(() => undefined);
    }
  }
  return { digest, bytes, cached: false };
}
