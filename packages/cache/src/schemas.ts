/**
 * One zod schema per kind of file the cache reads back (a lock, a lease, an entry's entry.json);
 * @ms/contracts' `parseJsonText` turns a file's text into a typed value or a CorruptArtifactError
 * naming the file and the field that is wrong.
 */
import { z } from "zod";

/** Who holds a lock or a lease: enough to tell a live holder from a dead one on any host. */
export const OwnerSchema = z.object({
  pid: z.number().int(),
  hostname: z.string(),
  /** Older holders and hand-written test locks may lack it; it is only ever shown. */
  startedAt: z.string().default("?"),
  /** /proc/<pid>/stat field 22 (clock ticks since boot), so a reused pid is told apart. */
  startTime: z.string().optional(),
  bootId: z.string().optional(),
  pidNs: z.string().optional(),
  /** Locks only: computing a key, or gc removing it. */
  purpose: z.enum(["compute", "gc"]).optional(),
  nonce: z.string().optional(),
});

/** leases/<pid>-<n>.lease: its holder and the keys its run uses. */
export const LeaseFileSchema = OwnerSchema.extend({ keys: z.array(z.string()) });

const IdentityRecordSchema = z.object({ identity: z.string(), sha256: z.string() });

/**
 * objects/<key>/entry.json. `key` and `step` are required (as they always were); fields that
 * entries of earlier versions may lack default, a field of the wrong type is an error.
 */
export const EntryInfoSchema = z.object({
  key: z.string(),
  step: z.string(),
  version: z.string().default(""),
  codeDigest: z.string().default(""),
  /** The parameters that entered the key, under the driver's names. */
  params: z.record(z.string(), z.unknown()).default({}),
  inputs: z.record(z.string(), z.string()).default({}),
  /** The manifest's content digest, recomputed from the entry's files when it was published. */
  outputDigest: z.string().default(""),
  createdAt: z.string().default(""),
  lastUsedAt: z.string().default(""),
  /** The tracking run that computed the entry. */
  producedByRun: z.string().nullable().default(null),
  /** File identities when last hashed (publish, later re-hashes): a hit re-hashes only changed files. */
  identities: z.record(z.string(), IdentityRecordSchema).optional(),
  /** Digest of the entry's metrics.json (the step's metric history, replayed into the child run of a hit). */
  history: z.string().optional(),
});

/** What the driver records about an entry beside the step's own manifest. */
export type EntryInfo = z.output<typeof EntryInfoSchema>;
