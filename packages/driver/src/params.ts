/**
 * `-P key=value` parameters in the seed's style. The catalog is the step definitions' own
 * parameter schemas under the driver's names; values are typed by the schema and then validated
 * by the step's own resolver, whose errors are renamed to the driver's names.
 */
import { BadParameterError, type BoundStep, type ParamSpec, type Step } from "@ms/contracts";

/** Every parameter of every step, under the driver's names. */
export function buildCatalog(steps: readonly Step[]): ParamSpec[] {
  return steps.flatMap((s) => s.params);
}

function validList(catalog: readonly ParamSpec[]): string {
  return catalog.map((s) => s.name).join(", ");
}

/** Splits `-P` values (`key=value`) into a map; the last of repeated keys wins. */
export function parseAssignments(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new BadParameterError("-P", `"${item}" is not key=value (for example -P als_max_iter=20)`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1);
  }
  return out;
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Renames a step's own parameter name in its error to the driver's (`hidden_units` -> `keras_hidden_units`). */
function renamed(error: unknown, step: Step, catalog: readonly ParamSpec[]): unknown {
  if (!(error instanceof BadParameterError)) return error;
  const local = error.parameter;
  const spec = step.params.find((s) => s.field === local || snake(s.field) === local || s.name === local);
  if (!spec) return error;
  const detail = error.message.replace(/^parameter [^:]+: /, "");
  return new BadParameterError(spec.name, `${detail}; valid parameters: ${validList(catalog)}`);
}

export interface Resolution {
  steps: BoundStep[];
  /** Every parameter under its driver name, resolved (defaults included): what the parent run logs. */
  flat: Record<string, string | number | boolean>;
}

/** Types, completes and validates raw `-P` values (by driver name) for every step. */
export function resolveParams(steps: readonly Step[], raw: Readonly<Record<string, string>>): Resolution {
  const catalog = buildCatalog(steps);
  const byName = new Map(catalog.map((s) => [s.name, s]));
  for (const name of Object.keys(raw)) {
    if (!byName.has(name)) throw new BadParameterError(name, `unknown parameter; valid parameters: ${validList(catalog)} (see 'ms run --help')`);
  }
  const bound = steps.map((step) => {
    const fields: Record<string, string> = {};
    for (const s of step.params) {
      const text = raw[s.name] ?? (s.defaultFrom !== undefined ? raw[s.defaultFrom] : undefined);
      if (text !== undefined) fields[s.field] = text;
    }
    try {
      return step.bind(fields);
    } catch (error) {
      throw renamed(error, step, catalog);
    }
  });
  const flat: Record<string, string | number | boolean> = {};
  for (const b of bound) {
    for (const s of b.step.params) {
      const v = b.params[s.field];
      if (v !== undefined) flat[s.name] = v;
    }
  }
  return { steps: bound, flat };
}

/** A step's parameters under the driver's names: all of them (what its child run logs), or those in its key. */
export function namedParams(bound: BoundStep, which: "all" | "key" = "all"): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const s of bound.step.params) {
    const v = which === "all" ? bound.params[s.field] : bound.keyParams[s.field];
    if (v !== undefined) out[s.name] = v;
  }
  return out;
}
