/**
 * JSON files read back from disk, checked by a zod schema: a file that is not JSON, or whose
 * content does not fit the schema, is a `CorruptArtifactError` naming the file and the field.
 * A file that cannot be read at all keeps its file-system error (missing is not corrupt).
 */
import { promises as fs } from "node:fs";
import { CorruptArtifactError } from "@ms/contracts";
import type { z } from "zod";

/** The parsed, validated content of `file`. */
export async function readJsonFile<S extends z.ZodType>(file: string, schema: S): Promise<z.infer<S>> {
  return parseJsonText(file, await fs.readFile(file, "utf8"), schema);
}

/** `text` (the content of `file`) parsed and validated. */
export function parseJsonText<S extends z.ZodType>(file: string, text: string, schema: S): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CorruptArtifactError(`${file}: not JSON (${(error as Error).message})`, { cause: error });
  }
  return validate(file, value, schema);
}

/** `value` (read from `file`, at the field `at` when given) validated; a misfit names the file and the field. */
export function validate<S extends z.ZodType>(file: string, value: unknown, schema: S, at?: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = [...(at ? [at] : []), ...issue.path.map(String)].join(".") || "(the whole file)";
  throw new CorruptArtifactError(`${file}: ${field}: ${issue.message}`, { cause: parsed.error });
}
