/**
 * `manifest.json`, the file beside a step's output that lists its files with their sizes and
 * sha256, the content digest they imply, and what the step recorded (params, metrics, details).
 * This is the one place that writes manifests and the one schema that reads them.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { type Digest, DigestSchema, digestFile, digestOf } from "./digest.js";
import { CorruptArtifactError, MissingArtifactError, asStorageError } from "./errors.js";
import { checkJson, parseJsonText, recordOf } from "./json-file.js";

export const MANIFEST_FILE = "manifest.json";
export const SCHEMA_VERSION = 1;

/** The kinds the seed steps produce; other steps declare their own. */
export const ARTIFACT_KINDS = ["raw-dataset", "ratings", "factors", "keras-model"] as const;
/**
 * What an artifact holds; readers check it so that a factors directory is never read as ratings.
 * Open: a step declares the kinds it produces, and the driver matches inputs to outputs by this string.
 */
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number] | (string & {});

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

/** A step's metrics as a manifest records them: numbers by name (MLflow's kind); NaN is written, and read, as null. */
export type ManifestMetrics = Record<string, number | null>;

export interface Manifest<P = Record<string, unknown>, M = ManifestMetrics, X = Record<string, unknown>> {
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
    const unsafe = unsafeArtifactPath(rel);
    if (unsafe) throw new Error(`artifact file ${JSON.stringify(rel)} ${unsafe}`);
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

/** The step-defined parts of a manifest, as schemas: a reader that relies on them has them checked. */
export interface ManifestParts<P, M, X> {
  params: v.GenericSchema<unknown, P>;
  metrics: v.GenericSchema<unknown, M>;
  details: v.GenericSchema<unknown, X>;
}

/** The parts as the contract itself defines them: objects keyed by name, whatever the step put there. */
export const Fields = recordOf(v.unknown());

/** Metrics as the contract defines them (see `ManifestMetrics`). */
export const MetricsSchema: v.GenericSchema<unknown, ManifestMetrics> = recordOf(v.nullable(v.number()));

const ArtifactFileSchema = v.object({
  path: v.pipe(
    v.string(),
    v.check(
      (rel) => unsafeArtifactPath(rel) === undefined,
      (issue) => `${JSON.stringify(issue.input)} ${unsafeArtifactPath(issue.input)}`,
    ),
  ),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits")),
});

type ArtifactFileRecord = v.InferOutput<typeof ArtifactFileSchema>;

/** The path item of `files[i].<key>`, for an issue raised on the whole manifest. */
function filePath(manifest: { files: ArtifactFileRecord[] }, i: number, key: "path"): [v.IssuePathItem, ...v.IssuePathItem[]] {
  const { files } = manifest;
  return [
    { type: "object", origin: "value", input: manifest, key: "files", value: files },
    { type: "array", origin: "value", input: files, key: i, value: files[i] },
    { type: "object", origin: "value", input: files[i], key, value: files[i][key] },
  ];
}

/**
 * `manifest.json` as the contract defines it. Beyond the shape: no path listed twice, and
 * `digest` the one its file list implies (downstream cache keys are built from it).
 */
export const ManifestSchema = v.pipe(
  v.object({
    kind: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]*$/, "an artifact kind (lower-case letters, digits and dashes)")),
    schemaVersion: v.literal(
      SCHEMA_VERSION,
      (issue) => `schemaVersion ${JSON.stringify(issue.input)} is not supported (expected ${SCHEMA_VERSION})`,
    ),
    digest: DigestSchema,
    files: v.array(ArtifactFileSchema),
    params: Fields,
    metrics: MetricsSchema,
    details: Fields,
    producedBy: v.object({ step: v.string(), version: v.string(), key: v.optional(v.string()) }),
    createdAt: v.string(),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const { files, digest } = dataset.value;
    const seen = new Set<string>();
    let duplicated = false;
    files.forEach((f, i) => {
      if (seen.has(f.path)) {
        duplicated = true;
        addIssue({ message: `"${f.path}" is listed twice`, input: f.path, path: filePath(dataset.value, i, "path") });
      }
      seen.add(f.path);
    });
    if (duplicated) return;
    const expected = contentDigest(files);
    if (digest !== expected) {
      addIssue({
        message: `the recorded digest ${digest.slice(0, 19)}... does not match its file list (${expected.slice(0, 19)}...)`,
        input: digest,
        path: [{ type: "object", origin: "value", input: dataset.value, key: "digest", value: digest }],
      });
    }
  }),
);

/**
 * Reads and checks a manifest: a file that is not JSON or does not match `ManifestSchema` is a
 * `CorruptArtifactError` naming the file and the field; no manifest at all is a
 * `MissingArtifactError`. `kind` guards against handing one step another's output. With `parts`,
 * the step-defined params, metrics and details are checked too (and typed by their schemas).
 */
export async function readManifest(dir: string, kind?: ArtifactKind): Promise<Manifest>;
export async function readManifest<P, M, X>(
  dir: string,
  kind: ArtifactKind | undefined,
  parts: ManifestParts<P, M, X>,
): Promise<Manifest<P, M, X>>;
export async function readManifest<P, M, X>(
  dir: string,
  kind?: ArtifactKind,
  parts?: ManifestParts<P, M, X>,
): Promise<Manifest<P | Record<string, unknown>, M | ManifestMetrics, X | Record<string, unknown>>> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    throw new MissingArtifactError(`${file}: no manifest (is ${dir} an artifact directory?)`, { cause: error });
  }
  const manifest = parseJsonText(text, ManifestSchema, file);
  if (kind && manifest.kind !== kind) {
    throw new CorruptArtifactError(`${file}: holds a "${manifest.kind}" artifact, expected "${kind}"`);
  }
  if (!parts) return manifest;
  return {
    ...manifest,
    params: checkJson(manifest.params, parts.params, `${file}: params`),
    metrics: checkJson(manifest.metrics, parts.metrics, `${file}: metrics`),
    details: checkJson(manifest.details, parts.details, `${file}: details`),
  };
}

/**
 * Why a manifest path is unsafe, or undefined: it must be relative, normalised, with `/`
 * separators and no `.`/`..` segment, so that it names a file inside the artifact directory.
 */
export function unsafeArtifactPath(rel: unknown): string | undefined {
  if (typeof rel !== "string" || rel === "") return "is not a file name";
  if (rel.includes("\\") || rel.includes("\0")) return "contains a backslash or NUL";
  if (path.posix.isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) return "is absolute";
  if (rel.split("/").some((seg) => seg === "" || seg === "." || seg === "..")) return "leaves the artifact directory or is not normalised";
  return undefined;
}
