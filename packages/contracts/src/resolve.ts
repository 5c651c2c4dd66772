/**
 * A list of steps' parameters from `-P name=value` text, resolved once: the catalog is the step
 * definitions' own schemas; a parameter has one name, so each step binds the values given under
 * its names and its errors already name the parameter as the user wrote it.
 */
import { BadParameterError } from "./errors.js";
import { unknownParameter, type ParamSpec, type ParamValue, type RawParams } from "./params.js";
import type { BoundStep, Step } from "./step.js";

/** Every parameter of every step. */
export function buildCatalog(steps: readonly Step[]): ParamSpec[] {
  return steps.flatMap((s) => s.params);
}

/** Splits `-P` values (`key=value`) into a map; the last of repeated keys wins. */
export function parseAssignments(list: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new BadParameterError("-P", `"${item}" is not key=value (for example -P als_max_iter=20)`);
    out.set(item.slice(0, eq).trim(), item.slice(eq + 1));
  }
  return out;
}

export interface Resolution {
  steps: BoundStep[];
  /** Every parameter resolved (defaults included): what the parent run logs. */
  flat: Record<string, ParamValue>;
}

/** Types, completes and validates raw `-P` values for every step. */
export function resolveParams(steps: readonly Step[], raw: RawParams): Resolution {
  const known = new Set(buildCatalog(steps).map((s) => s.name));
  for (const name of raw.keys()) if (!known.has(name)) throw unknownParameter(name, known, " (see 'ms run --help')");
  const bound = steps.map((step) => {
    const own = new Map<string, string>();
    for (const s of step.params) {
      const text = raw.get(s.name) ?? (s.defaultFrom !== undefined ? raw.get(s.defaultFrom) : undefined);
      if (text !== undefined) own.set(s.name, text);
    }
    return step.bind(own);
  });
  const flat: Record<string, ParamValue> = {};
  for (const b of bound) Object.assign(flat, b.params);
  return { steps: bound, flat };
}
