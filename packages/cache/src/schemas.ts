/**
 * One zod schema per kind of file the cache reads back (a lock, a lease, an entry's entry.json),
 * and `parseJsonFile`, which turns text read from `file` into a typed value or a
 * CorruptArtifactError naming the file and the first field that is wrong.
 */
import { CorruptArtifactError } from "@ms/contracts";
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

/** The path of the first problem of a failed parse, and what is wrong there. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const field = issue?.path.length ? issue.path.map(String).join(".") : "(the document)";
  return `field ${field}: ${issue?.message ?? "invalid"}`;
}

/** `text` (read from `file`) as JSON of `schema`'s shape; a CorruptArtifactError naming file and field otherwise. */
export function parseJsonFile<S extends z.ZodType>(file: string, text: string, schema: S): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CorruptArtifactError(`${file}: not JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new CorruptArtifactError(`${file}: ${firstIssue(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}
