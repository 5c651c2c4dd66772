/**
 * Artifact directories on disk: checks an artifact against its manifest (`verifyArtifact`),
 * stages output beside its target and publishes it by rename, so no reader ever sees a
 * half-written artifact. The manifest itself (its format, writer and reader) is in manifest.ts.
 */
import { randomBytes } from "node:crypto";
import { promises as fs, rmSync } from "node:fs";
import path from "node:path";
import { type Digest, digestFile } from "./digest.js";
import { pidAlive } from "./process.js";
import { CorruptArtifactError, MissingArtifactError, BadParameterError, asStorageError } from "./errors.js";
import { fileIdentity, identityTrustworthy, type FileIdentity } from "./file-digests.js";
import { readManifest, type ArtifactKind, type Manifest } from "./manifest.js";

// step.ts and older importers name these through this module.
export type { ArtifactKind, ArtifactRef, Manifest } from "./manifest.js";

/** What a file's identity was when it last hashed to `sha256` (see `fileIdentity`). */
export interface IdentityRecord {
  identity: string;
  sha256: string;
}

/** Identity records by artifact-relative path: lets a verified artifact be re-checked with `stat` alone. */
export type IdentityMemo = Record<string, IdentityRecord>;

export interface VerifyOptions {
  kind?: ArtifactKind;
  /** Re-hash every file, whatever the memo says. */
  deep?: boolean;
  /**
   * Identities recorded at an earlier verification: a file whose identity and manifest sha256 are
   * the recorded ones is not re-hashed; every other file is. Without a memo and without `deep`,
   * only presence and sizes are checked (the cheap check).
   */
  memo?: IdentityMemo;
}

export interface VerifyResult {
  ok: boolean;
  problems: string[];
  /** The manifest, when it could be read (its digest already checked against its file list). */
  manifest?: Manifest;
  /** With `deep` or `memo`: the identities to remember for the files that hashed correctly. */
  memo?: IdentityMemo;
  /** Whether `memo` differs from the one passed in (worth writing back). */
  memoChanged: boolean;
  /** How many files were read and hashed. */
  hashed: number;
}

/** Whether `MS_CACHE_REHASH=1` turns the identity memo off (always re-hash; for benchmarks). */
export function rehashForced(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.MS_CACHE_REHASH === "1";
}

async function realDir(dir: string): Promise<string> {
  return fs.realpath(dir);
}

/**
 * Checks an artifact against its manifest. Always: the manifest's shape, its digest against its
 * file list, every path inside the directory (a symbolic link must resolve inside it too), every
 * file a regular file of the recorded size. With `deep`, every file is re-hashed; with `memo`,
 * only those whose identity changed since they were last hashed (`MS_CACHE_REHASH=1`: all).
 */
export async function verifyArtifact(dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const problems: string[] = [];
  let manifest: Manifest;
  try {
    manifest = await readManifest(dir, options.kind);
  } catch (error) {
    return { ok: false, problems: [(error as Error).message], memoChanged: false, hashed: 0 };
  }
  const hashing = options.deep === true || options.memo !== undefined;
  const known = options.deep || rehashForced() ? {} : (options.memo ?? {});
  const memo: IdentityMemo = {};
  let hashed = 0;
  let root: Promise<string> | undefined;
  for (const f of manifest.files) {
    const full = path.join(dir, f.path);
    let id: FileIdentity;
    try {
      id = await fileIdentity(full, { noFollow: true });
      if (id.isSymbolicLink || f.path.includes("/")) {
        // A link (or a linked parent directory) must not lead out of the artifact.
        root ??= realDir(dir);
        const real = await fs.realpath(full);
        const base = await root;
        if (real !== base && !real.startsWith(base + path.sep)) {
          problems.push(`${full}: resolves to ${real}, outside the artifact directory`);
          continue;
        }
        id = await fileIdentity(full);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(
        code === "ENOENT" || code === "ENOTDIR" ? `${full}: missing` : `${full}: cannot be read (${code ?? (error as Error).message})`,
      );
      continue;
    }
    if (!id.isFile) {
      problems.push(`${full}: not a regular file`);
      continue;
    }
    if (id.bytes !== f.bytes) {
      problems.push(`${full}: ${id.bytes} bytes, manifest says ${f.bytes}`);
      continue;
    }
    if (!hashing) continue;
    const record = known[f.path];
    if (record && record.identity === id.identity && record.sha256 === f.sha256) {
      memo[f.path] = record;
      continue;
    }
    hashed++;
    let digest: Digest;
    try {
      ({ digest } = await digestFile(full));
    } catch (error) {
      problems.push(`${full}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      continue;
    }
    if (digest !== `sha256:${f.sha256}`) {
      problems.push(`${full}: content digest differs from the manifest (sha256 ${digest.slice(7, 19)}... vs ${f.sha256.slice(0, 12)}...)`);
      continue;
    }
    // Remembered only if the file did not change while it was read and is past the racy window.
    const after = await fileIdentity(full).catch(() => undefined);
    if (after?.identity === id.identity && identityTrustworthy(id)) memo[f.path] = { identity: id.identity, sha256: f.sha256 };
  }
  const before = options.memo ?? {};
  const memoChanged =
    hashing &&
    (Object.keys(memo).length !== Object.keys(before).length ||
      Object.entries(memo).some(([p, r]) => before[p]?.identity !== r.identity || before[p]?.sha256 !== r.sha256));
  return { ok: problems.length === 0, problems, manifest, ...(hashing ? { memo } : {}), memoChanged, hashed };
}

/**
 * A fresh, empty directory beside `target` to build an artifact in before publishing it. Staging
 * and swapped-out directories that dead processes left in the same parent are removed first, and
 * this one is removed when the process exits or is interrupted before it is published or discarded.
 */
export async function makeStagingDir(target: string): Promise<string> {
  const parent = path.dirname(path.resolve(target));
  const staging = path.join(parent, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  // Tracked before it exists: a signal between mkdir and tracking would otherwise leave it behind.
  trackStaging(staging);
  try {
    await fs.mkdir(parent, { recursive: true });
    await removeDeadLeftovers(parent);
    await fs.mkdir(staging);
  } catch (error) {
    untrackStaging(staging);
    throw asStorageError(error, staging);
  }
  return staging;
}

/**
 * Refuses an output directory that holds anything but an earlier artifact of the same kind, so a
 * mistyped `--out` never deletes a user's files. Call before doing the work.
 */
export async function assertReplaceableOutput(target: string, kind: ArtifactKind, parameter = "--out"): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code === "ENOTDIR") throw new BadParameterError(parameter, `${target} exists and is not a directory`);
    throw error;
  }
  if (entries.length === 0) return;
  let existing: Manifest | undefined;
  try {
    existing = await readManifest(target);
  } catch {
    existing = undefined;
  }
  if (!existing || existing.kind !== kind) {
    throw new BadParameterError(
      parameter,
      `${target} is not empty and does not hold an earlier "${kind}" output; refusing to overwrite it`,
    );
  }
}

/**
 * Moves a finished staging directory into place. An earlier artifact at `target` is swapped out
 * first and deleted only once the new one is in place.
 */
export async function publishDir(staging: string, target: string): Promise<void> {
  const abs = path.resolve(target);
  const old = `${path.join(path.dirname(abs), `.${path.basename(abs)}.old-${process.pid}-${randomBytes(4).toString("hex")}`)}`;
  let movedOld = false;
  try {
    await fs.rename(abs, old);
    movedOld = true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw asStorageError(error, abs);
  }
  try {
    await fs.rename(staging, abs);
  } catch (error) {
    if (movedOld) await fs.rename(old, abs).catch(() => undefined);
    throw asStorageError(error, abs);
  }
  untrackStaging(staging);
  if (movedOld) await fs.rm(old, { recursive: true, force: true });
}

/** Deletes a staging directory after a failure; never throws, the original error matters more. */
export async function discardStagingDir(staging: string): Promise<void> {
  await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
  untrackStaging(staging);
}

/**
 * Runs `build` in a staging directory beside `target` and publishes the result; on any error the
 * staging directory is removed and `target` is left as it was.
 */
export async function buildArtifactDir<T>(target: string, build: (staging: string) => Promise<T>): Promise<T> {
  const staging = await makeStagingDir(target);
  try {
    const result = await build(staging);
    await publishDir(staging, target);
    return result;
  } catch (error) {
    await discardStagingDir(staging);
    throw error;
  }
}

/**
 * Refuses a damaged input artifact before a step reads it (exit 5): the same check a cache hit
 * gets, with every file re-hashed. A path that is not a directory (a bare Parquet file) has no
 * manifest to check against and is let through. The driver skips this (`inputsVerified`): it
 * verified its inputs when it served or published them.
 */
export async function assertArtifactIntact(pathOrDir: string, kind: ArtifactKind): Promise<void> {
  const isDir = await fs.stat(pathOrDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return;
  // A missing manifest or one of another kind keeps its own error (exit 4 or 5) and message, and
  // so does a file the manifest lists that is not there at all (exit 4).
  const manifest = await readManifest(pathOrDir, kind);
  for (const f of manifest.files) {
    const full = path.join(pathOrDir, f.path);
    if (
      !(await fs.lstat(full).then(
        () => true,
        () => false,
      ))
    )
      throw new MissingArtifactError(`${path.resolve(full)}: missing from the ${kind} artifact (its manifest lists it)`);
  }
  const result = await verifyArtifact(pathOrDir, { kind, deep: true });
  if (!result.ok) throw new CorruptArtifactError(`${path.resolve(pathOrDir)}: damaged ${kind} artifact: ${result.problems.join("; ")}`);
}

/** `.<name>.tmp-<pid>-<hex>` from `makeStagingDir`, `.<name>.old-<pid>-<hex>` from `publishDir`. */
const LEFTOVER = /^\..+\.(?:tmp|old)-(\d+)-[0-9a-f]{8}$/;

/** Best effort: a leftover that cannot be removed costs disk space, not the run. */
async function removeDeadLeftovers(parent: string): Promise<void> {
  const entries = await fs.readdir(parent, { withFileTypes: true }).catch(() => []);
  await Promise.all(
    entries.map(async (entry) => {
      const pid = Number(LEFTOVER.exec(entry.name)?.[1]);
      if (!entry.isDirectory() || !(pid > 0) || pidAlive(pid)) return;
      await fs.rm(path.join(parent, entry.name), { recursive: true, force: true }).catch(() => undefined);
    }),
  );
}

/**
 * Staging directories of this process not yet published or discarded. An exit hook removes them
 * (synchronously: nothing else runs at exit), and while there are any, SIGINT and SIGTERM do too.
 */
const liveStaging = new Set<string>();

function removeLiveStagingSync(): void {
  for (const dir of liveStaging) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Exiting anyway; the next run into this parent removes it as a dead process's leftover.
    }
  }
  liveStaging.clear();
}

function onStagingSignal(signal: NodeJS.Signals): void {
  // Another listener (the driver) owns the shutdown and may let the step finish; the exit hook
  // cleans up after it. Alone, we replace Node's default, so do what it does: die by the signal.
  if (process.listenerCount(signal) > 1) return;
  removeLiveStagingSync();
  unhookStaging();
  process.kill(process.pid, signal);
}

function trackStaging(dir: string): void {
  if (liveStaging.size === 0) {
    process.on("exit", removeLiveStagingSync);
    process.on("SIGINT", onStagingSignal);
    process.on("SIGTERM", onStagingSignal);
  }
  liveStaging.add(dir);
}

function untrackStaging(dir: string): void {
  if (liveStaging.delete(dir) && liveStaging.size === 0) unhookStaging();
}

function unhookStaging(): void {
  process.off("exit", removeLiveStagingSync);
  process.off("SIGINT", onStagingSignal);
  process.off("SIGTERM", onStagingSignal);
}
