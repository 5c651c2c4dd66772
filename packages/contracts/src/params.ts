/**
 * A step's parameter schema: one name per parameter (the `-P` name, which bins turn into a flag
 * mechanically), its type, default, choices, range, whether it enters the cache key, and its doc.
 * Text is parsed and range-checked here, defaults are filled here, and a step's own resolver only
 * adds what one parameter cannot say alone (a default that depends on another, a cross check).
 */
import path from "node:path";
import { BadParameterError } from "./errors.js";

export type ParamValue = string | number | boolean;
export type ParamType = "integer" | "number" | "boolean" | "string" | "path";

/** The bounds of a number: `min`/`max` inclusive unless marked exclusive. */
export interface ParamRange {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/** One parameter of a step: how to read it from text, its default, and what it means. */
export interface ParamDef<T extends ParamValue> extends ParamRange {
  type: ParamType;
  /** Undefined: optional, and absent unless given (or filled by the step's resolver, see `defaultDoc`). */
  default: T | undefined;
  /** How the help states a default that is not one value (the core count; another parameter's value). */
  defaultDoc?: string;
  choices?: readonly T[];
  doc: string;
  /** Why this parameter cannot change a result; it then stays out of the cache key. */
  notInKey?: string;
  /** Another parameter whose value this one takes when it is not given. */
  defaultFrom?: string;
  /** Text from `-P` or a flag to a checked typed value; throws BadParameterError naming `name`. */
  parse(text: string, name: string): T;
  /** Checks a typed value (type, choices, range); throws BadParameterError naming `name`. */
  check(value: unknown, name: string): T;
}

interface ParamOptions<T> extends ParamRange {
  default?: T;
  defaultDoc?: string;
  doc: string;
  notInKey?: string;
  defaultFrom?: string;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/** `[1, 1024]`, `(0, 1)`, `>= 0`, `> 0`: the range as the help and errors state it. */
export function describeRange(r: ParamRange): string | undefined {
  const lo = r.min === undefined ? undefined : `${r.minExclusive ? "(" : "["}${r.min}`;
  const hi = r.max === undefined ? undefined : `${r.max}${r.maxExclusive ? ")" : "]"}`;
  if (lo && hi) return `in ${lo}, ${hi}`;
  if (lo) return `${r.minExclusive ? ">" : ">="} ${r.min}`;
  if (hi) return `${r.maxExclusive ? "<" : "<="} ${r.max}`;
  return undefined;
}

function checkRange(n: number, r: ParamRange, name: string, integer: boolean): number {
  const low = r.min !== undefined && (r.minExclusive ? n <= r.min : n < r.min);
  const high = r.max !== undefined && (r.maxExclusive ? n >= r.max : n > r.max);
  if (low || high) throw new BadParameterError(name, `must be ${integer ? "an integer" : "a number"} ${describeRange(r)}, got ${n}`);
  return n;
}

function numberDef(type: "integer" | "number", o: ParamOptions<number>): ParamDef<number> {
  const integer = type === "integer";
  const check = (value: unknown, name: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value))
      throw new BadParameterError(name, `must be a finite number, got ${JSON.stringify(value)}`);
    if (integer && !Number.isSafeInteger(value)) throw new BadParameterError(name, `must be an integer, got ${value}`);
    return checkRange(value, o, name, integer);
  };
  return {
    type,
    default: o.default,
    ...o,
    check,
    parse(text, name) {
      const trimmed = text.trim();
      const n = Number(trimmed);
      if (trimmed === "" || !Number.isFinite(n)) throw new BadParameterError(name, `"${text}" is not a number`);
      if (integer && !Number.isSafeInteger(n)) throw new BadParameterError(name, `"${text}" is not an integer`);
      return check(n, name);
    },
  };
}

function stringCheck(value: unknown, name: string): string {
  if (typeof value !== "string") throw new BadParameterError(name, `must be text, got ${JSON.stringify(value)}`);
  return value;
}

/** Builders for parameter definitions; the value type follows from the builder. */
export const param = {
  integer: (o: ParamOptions<number>): ParamDef<number> => numberDef("integer", o),
  number: (o: ParamOptions<number>): ParamDef<number> => numberDef("number", o),
  boolean: (o: ParamOptions<boolean>): ParamDef<boolean> => ({
    type: "boolean",
    default: o.default,
    ...o,
    check(value, name) {
      if (typeof value !== "boolean") throw new BadParameterError(name, `must be true or false, got ${JSON.stringify(value)}`);
      return value;
    },
    parse(text, name) {
      const t = text.trim().toLowerCase();
      if (TRUE.has(t)) return true;
      if (FALSE.has(t)) return false;
      throw new BadParameterError(name, `"${text}" is not true or false`);
    },
  }),
  string: (o: ParamOptions<string>): ParamDef<string> => ({
    type: "string",
    default: o.default,
    ...o,
    check: stringCheck,
    parse: (t) => t,
  }),
  /** A file or directory; relative paths are resolved against the working directory at the edge. */
  path: (o: ParamOptions<string>): ParamDef<string> => {
    const check = (value: unknown, name: string): string => {
      const text = stringCheck(value, name);
      if (text.trim() === "") throw new BadParameterError(name, "is an empty path");
      return path.resolve(text);
    };
    return { type: "path", default: o.default, ...o, check, parse: check };
  },
  choice<const C extends readonly string[]>(choices: C, o: ParamOptions<C[number]>): ParamDef<C[number]> {
    const check = (value: unknown, name: string): C[number] => {
      const found = choices.find((c) => c === value);
      if (found === undefined) throw new BadParameterError(name, `"${String(value)}" is not one of ${choices.join(", ")}`);
      return found;
    };
    return { type: "string", default: o.default, choices, ...o, check, parse: (text, name) => check(text.trim(), name) };
  },
};

/** A step's parameters: a flat record of plain values keyed by their `-P` names (optional ones may be absent). */
export type StepParams<P> = { [K in keyof P]: ParamValue | undefined };

/** One definition per parameter. */
export type ParamDefs<P extends StepParams<P>> = { [K in keyof P & string]-?: ParamDef<Exclude<P[K], undefined>> };

/** A parameter as the driver and the bins list it. */
export interface ParamSpec extends ParamRange {
  /** The one name: `-P als_max_iter=20`, `--als-max-iter 20`, and the key of the step's params. */
  name: string;
  step: string;
  type: ParamType;
  default: ParamValue | undefined;
  defaultDoc?: string;
  choices?: readonly ParamValue[];
  doc: string;
  inKey: boolean;
  notInKey?: string;
  defaultFrom?: string;
}

/** The specs of a schema, in declaration order. */
export function paramSpecs<P extends StepParams<P>>(step: string, defs: ParamDefs<P>): ParamSpec[] {
  return Object.entries<ParamDef<ParamValue>>(defs).map(([name, d]) => ({
    name,
    step,
    type: d.type,
    default: d.default,
    ...(d.defaultDoc ? { defaultDoc: d.defaultDoc } : {}),
    ...(d.min !== undefined ? { min: d.min, ...(d.minExclusive ? { minExclusive: true } : {}) } : {}),
    ...(d.max !== undefined ? { max: d.max, ...(d.maxExclusive ? { maxExclusive: true } : {}) } : {}),
    ...(d.choices ? { choices: d.choices } : {}),
    doc: d.doc,
    inKey: d.notInKey === undefined,
    ...(d.notInKey ? { notInKey: d.notInKey } : {}),
    ...(d.defaultFrom ? { defaultFrom: d.defaultFrom } : {}),
  }));
}

/**
 * The resolver of a schema: checks each given value, fills the defaults, then lets the step's
 * cross-parameter check (`cross`) complete and check the whole. The one place a step's params are
 * resolved; bins, the driver and library callers all go through it.
 */
export function paramResolver<P extends StepParams<P>>(defs: ParamDefs<P>, cross?: (params: P) => P): (partial?: Partial<P>) => P {
  const names = Object.keys(defs) as (keyof P & string)[];
  return (partial = {}) => {
    const out = Object.create(null) as Record<string, ParamValue>;
    const given = partial as Readonly<Record<string, unknown>>;
    for (const name of Object.keys(given)) if (!Object.hasOwn(defs, name)) throw unknownParameter(name, names);
    for (const name of names) {
      const d: ParamDef<ParamValue> = defs[name];
      const value = given[name];
      if (value !== undefined) out[name] = d.check(value, name);
      else if (d.default !== undefined) out[name] = d.default;
    }
    // Every declared name was checked against its definition or given its default above.
    const typed = { ...out } as P;
    return cross ? cross(typed) : typed;
  };
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** The known name closest to `name` (a suffix match counts: `max_iter` -> `als_max_iter`, `max-iter` -> `als-max-iter`), if any is close. */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const suffix = [`_${name}`, `-${name}`].some((t) => k.endsWith(t)) || [`_${k}`, `-${k}`].some((t) => name.endsWith(t));
    const score = suffix ? 0.5 : distance(name, k);
    if (score < bestScore) [best, bestScore] = [k, score];
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** An unknown parameter, with the closest known name when there is one. */
export function unknownParameter(name: string, known: Iterable<string>, help = ""): BadParameterError {
  const near = closestName(name, known);
  return new BadParameterError(name, `unknown parameter${near ? `; did you mean ${near}?` : ""}${help}`);
}

/** Text values by name from `-P name=value` or flags, with no inherited keys (`__proto__` is a name like any other). */
export type RawParams = ReadonlyMap<string, string>;

/** Parses raw text values by a schema's specs; a name the schema lacks is an unknown parameter. */
export function parseRawParams<P extends StepParams<P>>(defs: ParamDefs<P>, raw: RawParams): Partial<P> {
  const out = Object.create(null) as Record<string, ParamValue>;
  const names = Object.keys(defs);
  for (const [name, text] of raw) {
    if (!Object.hasOwn(defs, name)) throw unknownParameter(name, names);
    out[name] = (defs[name as keyof P & string] as ParamDef<ParamValue>).parse(text, name);
  }
  // Each value was parsed by its own definition.
  return { ...out } as Partial<P>;
}

/** One help line's description: the doc, the default (or how it is chosen), the choices or range, and why it is outside the key. */
export function describeParam(s: ParamSpec): string {
  const parts = [s.doc];
  if (s.defaultDoc) parts.push(`default ${s.defaultDoc}`);
  else if (s.default !== undefined) parts.push(`default ${String(s.default)}`);
  else if (s.defaultFrom) parts.push(`default: the value of ${s.defaultFrom}`);
  else parts.push("no default");
  if (s.choices) parts.push(`one of ${s.choices.join("|")}`);
  const range = describeRange(s);
  if (range) parts.push(range);
  if (s.notInKey) parts.push(`NOT in the cache key: ${s.notInKey}`);
  return parts.join("; ");
}
