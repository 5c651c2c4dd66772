/**
 * One valibot schema per kind of file the cache reads back (a lock, a lease, an entry's entry.json);
 * @ms/contracts' `parseJsonText` turns a file's text into a typed value or a CorruptArtifactError
 * naming the file and the field that is wrong.
 */
import { recordOf } from "@ms/contracts";
import * as v from "valibot";

/** The fields of `OwnerSchema`, shared with `LeaseFileSchema`. */
const ownerEntries = {
  pid: v.pipe(v.number(), v.integer()),
  hostname: v.string(),
  /** Older holders and hand-written test locks may lack it; it is only ever shown. */
  startedAt: v.optional(v.string(), "?"),
  /** /proc/<pid>/stat field 22 (clock ticks since boot), so a reused pid is told apart. */
  startTime: v.optional(v.string()),
  bootId: v.optional(v.string()),
  pidNs: v.optional(v.string()),
  /** Locks only: computing a key, or gc removing it. */
  purpose: v.optional(v.picklist(["compute", "gc"])),
  nonce: v.optional(v.string()),
};

/** Who holds a lock or a lease: enough to tell a live holder from a dead one on any host. */
export const OwnerSchema = v.object(ownerEntries);

/** leases/<pid>-<n>.lease: its holder and the keys its run uses. */
export const LeaseFileSchema = v.object({ ...ownerEntries, keys: v.array(v.string()) });

const IdentityRecordSchema = v.object({ identity: v.string(), sha256: v.string() });

/**
 * objects/<key>/entry.json. `key` and `step` are required (as they always were); fields that
 * entries of earlier versions may lack default, a field of the wrong type is an error.
 */
const entryInfoEntries = {
  key: v.string(),
  step: v.string(),
  version: v.optional(v.string(), ""),
  codeDigest: v.optional(v.string(), ""),
  /** The parameters that entered the key, under the driver's names. */
  params: v.optional(recordOf(v.unknown()), {}),
  inputs: v.optional(recordOf(v.string()), {}),
  /** The manifest's content digest, recomputed from the entry's files when it was published. */
  outputDigest: v.optional(v.string(), ""),
  createdAt: v.optional(v.string(), ""),
  lastUsedAt: v.optional(v.string(), ""),
  /** The tracking run that computed the entry. */
  producedByRun: v.optional(v.nullable(v.string()), null),
  /** File identities when last hashed (publish, later re-hashes): a hit re-hashes only changed files. */
  identities: v.optional(recordOf(IdentityRecordSchema)),
  /** Digest of the entry's metrics.json (the step's metric history, replayed into the child run of a hit). */
  history: v.optional(v.string()),
};

export const EntryInfoSchema = v.object(entryInfoEntries);

/** What the driver records about an entry beside the step's own manifest. */
export type EntryInfo = v.InferOutput<typeof EntryInfoSchema>;
