/**
 * The one way to read JSON that came from disk or from a server: parse, check against a valibot
 * schema, and on any failure throw an error that names the source and the offending field
 * (`<file>: files[2].sha256: expected 64 lowercase hex digits`). A `CorruptArtifactError` unless the caller
 * asks for another class (a server answer is a tracking or network failure, not a corrupt file).
 */
import { readFileSync, promises as fs } from "node:fs";
import * as v from "valibot";
import { CorruptArtifactError } from "./errors.js";

/** Builds the error thrown for a bad document; `CorruptArtifactError` by default. */
export type JsonErrorFactory = (message: string, options: { cause?: unknown }) => Error;

export interface ParseJsonOptions {
  /** The error class for a bad document (e.g. `TrackingUnavailableError` for a server answer). */
  error?: JsonErrorFactory;
}

const corrupt: JsonErrorFactory = (message, options) => new CorruptArtifactError(message, options);

/**
 * A JSON object keyed by strings, each value checked by `value`. Valibot's `record` alone also
 * takes an array (it is an object too); a field documented as an object must not be one.
 */
export function recordOf<S extends v.GenericSchema>(value: S) {
  return v.pipe(
    v.unknown(),
    v.check((input) => !Array.isArray(input), "Invalid type: Expected Object but received Array"),
    v.record(v.string(), value),
  );
}

/** `files[2].sha256` for the path `["files", 2, "sha256"]`. */
export function formatIssuePath(issuePath: readonly PropertyKey[]): string {
  let out = "";
  for (const key of issuePath) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === "" ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** `<source>: <field>: <message>` for the first issue of a failed parse (and a count of the rest). */
export function describeSchemaError(source: string, issues: readonly v.BaseIssue<unknown>[]): string {
  const [first] = issues;
  if (!first) return `${source}: does not match its schema`;
  const field = formatIssuePath((first.path ?? []).map((item) => item.key as PropertyKey));
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? "s" : ""})` : "";
  return `${source}: ${field === "" ? "" : `${field}: `}${first.message}${more}`;
}

/** Checks an already-parsed value against `schema`; `source` names it in the error. */
export function checkJson<S extends v.GenericSchema>(
  value: unknown,
  schema: S,
  source: string,
  options: ParseJsonOptions = {},
): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (!result.success)
    throw (options.error ?? corrupt)(describeSchemaError(source, result.issues), { cause: new v.ValiError(result.issues) });
  return result.output;
}

/** Parses JSON text and checks it against `schema`; `source` (a file, an endpoint) names it in the error. */
export function parseJsonText<S extends v.GenericSchema>(
  text: string,
  schema: S,
  source: string,
  options: ParseJsonOptions = {},
): v.InferOutput<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw (options.error ?? corrupt)(`${source}: not valid JSON (${why})`, { cause: error });
  }
  return checkJson(value, schema, source, options);
}

/**
 * Reads `file`, parses it and checks it against `schema`. Errors reading the file (ENOENT...)
 * are thrown unchanged, so callers keep deciding what a missing file means; a file that is not
 * JSON or does not match is a `CorruptArtifactError` naming the file and the field.
 */
export async function parseJsonFile<S extends v.GenericSchema>(
  file: string,
  schema: S,
  options: ParseJsonOptions = {},
): Promise<v.InferOutput<S>> {
  return parseJsonText(await fs.readFile(file, "utf8"), schema, file, options);
}

/** `parseJsonFile` for the few places that must stay synchronous (exit hooks, module set-up). */
export function parseJsonFileSync<S extends v.GenericSchema>(file: string, schema: S, options: ParseJsonOptions = {}): v.InferOutput<S> {
  return parseJsonText(readFileSync(file, "utf8"), schema, file, options);
}
