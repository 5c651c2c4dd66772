/**
 * Artifact directories on disk: a step's files under their own names plus `manifest.json`.
 * This is the one place that writes and checks manifests, stages output beside its target and
 * publishes it by rename, so no reader ever sees a half-written artifact.
 */
import { randomBytes } from "node:crypto";
import { promises as fs, rmSync } from "node:fs";
import path from "node:path";
import { type Digest, digestFile, digestOf } from "./digest.js";
import { CorruptArtifactError, MissingArtifactError, BadParameterError, asStorageError } from "./errors.js";

export const MANIFEST_FILE = "manifest.json";
export const SCHEMA_VERSION = 1;

/** What an artifact holds; readers check it so that a factors directory is never read as ratings. */
export type ArtifactKind = "raw-dataset" | "ratings" | "factors" | "keras-model";

export interface ArtifactFile {
  /** Relative to the artifact directory, with `/` separators. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface ProducedBy {
  step: string;
  version: string;
  /** The cache key when the driver produced it. */
  key?: string;
}

export interface Manifest<P = Record<string, unknown>, M = Record<string, unknown>, X = Record<string, unknown>> {
  kind: ArtifactKind;
  schemaVersion: number;
  /** Hash of the content files (names and bytes), not of the manifest: equal outputs, equal digests. */
  digest: Digest;
  files: ArtifactFile[];
  params: P;
  metrics: M;
  /** Kind-specific facts readers need (schema, row count, rank, split...). */
  details: X;
  producedBy: ProducedBy;
  createdAt: string;
}

/** A reference to a published artifact, as steps hand them to each other. */
export interface ArtifactRef<K extends ArtifactKind = ArtifactKind> {
  kind: K;
  /** Absolute path of the artifact directory. */
  dir: string;
  digest: Digest;
}

/** The digest of a set of files: order-independent, so it names content only. */
export function contentDigest(files: readonly ArtifactFile[]): Digest {
  const lines = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => `${f.sha256}  ${f.path}\n`);
  return digestOf(lines.join(""));
}

export async function describeFiles(dir: string, relPaths: readonly string[]): Promise<ArtifactFile[]> {
  const out: ArtifactFile[] = [];
  for (const rel of relPaths) {
    const { digest, bytes } = await digestFile(path.join(dir, rel));
    out.push({ path: rel, bytes, sha256: digest.slice("sha256:".length) });
  }
  return out;
}

export interface WriteManifestInput<P, M, X> {
  kind: ArtifactKind;
  files: readonly string[];
  params: P;
  metrics: M;
  details: X;
  producedBy: ProducedBy;
}

/** Hashes the listed files and writes `manifest.json` beside them. */
export async function writeManifest<P, M, X>(dir: string, input: WriteManifestInput<P, M, X>): Promise<Manifest<P, M, X>> {
  const files = await describeFiles(dir, input.files);
  const manifest: Manifest<P, M, X> = {
    kind: input.kind,
    schemaVersion: SCHEMA_VERSION,
    digest: contentDigest(files),
    files,
    params: input.params,
    metrics: input.metrics,
    details: input.details,
    producedBy: input.producedBy,
    createdAt: new Date().toISOString(),
  };
  const target = path.join(dir, MANIFEST_FILE);
  try {
    await fs.writeFile(target, JSON.stringify(manifest, null, 2) + "\n");
  } catch (error) {
    throw asStorageError(error, target);
  }
  return manifest;
}

/** Reads and shape-checks a manifest; `kind` guards against handing one step another's output. */
export async function readManifest<P = Record<string, unknown>, M = Record<string, unknown>, X = Record<string, unknown>>(
  dir: string,
  kind?: ArtifactKind,
): Promise<Manifest<P, M, X>> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    throw new MissingArtifactError(`${file}: no manifest (is ${dir} an artifact directory?)`, { cause: error });
  }
  let manifest: Manifest<P, M, X>;
  try {
    manifest = JSON.parse(text) as Manifest<P, M, X>;
  } catch (error) {
    throw new CorruptArtifactError(`${file}: not valid JSON`, { cause: error });
  }
  if (!manifest || typeof manifest !== "object" || !Array.isArray(manifest.files) || typeof manifest.digest !== "string") {
    throw new CorruptArtifactError(`${file}: not an ms manifest`);
  }
  if (manifest.schemaVersion !== SCHEMA_VERSION) {
    throw new CorruptArtifactError(`${file}: schemaVersion ${String(manifest.schemaVersion)} is not supported (expected ${SCHEMA_VERSION})`);
  }
  if (kind && manifest.kind !== kind) {
    throw new CorruptArtifactError(`${file}: holds a "${manifest.kind}" artifact, expected "${kind}"`);
  }
  return manifest;
}

export interface VerifyResult {
  ok: boolean;
  problems: string[];
}

/**
 * Checks an artifact against its manifest. `deep: false` looks at presence and sizes only (cheap,
 * for cache hits); `deep: true` re-hashes every file.
 */
export async function verifyArtifact(dir: string, options: { deep: boolean; kind?: ArtifactKind }): Promise<VerifyResult> {
  const problems: string[] = [];
  let manifest: Manifest;
  try {
    manifest = await readManifest(dir, options.kind);
  } catch (error) {
    return { ok: false, problems: [(error as Error).message] };
  }
  for (const f of manifest.files) {
    const full = path.join(dir, f.path);
    try {
      const st = await fs.stat(full);
      if (st.size !== f.bytes) {
        problems.push(`${full}: ${st.size} bytes, manifest says ${f.bytes}`);
        continue;
      }
      if (options.deep) {
        const { digest } = await digestFile(full);
        if (digest !== `sha256:${f.sha256}`) problems.push(`${full}: content digest differs from the manifest`);
      }
    } catch {
      problems.push(`${full}: missing`);
    }
  }
  if (options.deep && contentDigest(manifest.files) !== manifest.digest) problems.push(`${dir}: manifest digest does not match its file list`);
  return { ok: problems.length === 0, problems };
}

/**
 * A fresh, empty directory beside `target` to build an artifact in before publishing it. Staging
 * and swapped-out directories that dead processes left in the same parent are removed first, and
 * this one is removed when the process exits or is interrupted before it is published or discarded.
 */
export async function makeStagingDir(target: string): Promise<string> {
  const parent = path.dirname(path.resolve(target));
  const staging = path.join(parent, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await fs.mkdir(parent, { recursive: true });
    await removeDeadLeftovers(parent);
    await fs.mkdir(staging);
  } catch (error) {
    throw asStorageError(error, staging);
  }
  trackStaging(staging);
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
    throw new BadParameterError(parameter, `${target} is not empty and does not hold an earlier "${kind}" output; refusing to overwrite it`);
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

/** `.<name>.tmp-<pid>-<hex>` from `makeStagingDir`, `.<name>.old-<pid>-<hex>` from `publishDir`. */
const LEFTOVER = /^\..+\.(?:tmp|old)-(\d+)-[0-9a-f]{8}$/;

/** Same-host liveness, the rule the driver's cache uses too; EPERM means alive but not ours. */
function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

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
