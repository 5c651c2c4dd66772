/**
 * The step contract. A step is a declared definition around a function: its name and code
 * identity, a parameter schema (types, defaults, choices, docs, which parameters stay out of the
 * cache key), named typed inputs and outputs, and `run`. The driver holds a list of definitions
 * and runs them generically, so help, `-P` parsing, the cache key, tracking and the report all
 * come from here; adding a step is its package plus one line in the driver.
 *
 * Steps report through the context only, so they run the same whether a bin, a test or the driver
 * (which forwards metrics to a tracker) calls them.
 */
import path from "node:path";
import type { Logger } from "pino";
import type { ArtifactKind, ArtifactRef, Manifest } from "./artifact.js";
import { BadParameterError, MissingArtifactError } from "./errors.js";

export interface MetricsSink {
  /** A metric value; `step` is the iteration or epoch for series such as training loss. */
  metric(key: string, value: number, step?: number): void;
}

export interface StepContext {
  logger: Logger;
  metrics?: MetricsSink;
  signal?: AbortSignal;
  /** Whether to draw per-iteration progress (bins turn it on when stderr is a terminal). */
  progress?: boolean;
  /**
   * The cache root (default `defaultCacheDir()`). A step that keeps something there (downloads,
   * remembered digests) takes its place from @ms/cache's `cacheLayout`, the root's one owner.
   */
  cacheDir?: string;
  /** The caller has verified the input artifacts against their manifests (the driver does); skip re-hashing them. */
  inputsVerified?: boolean;
}

/** What every step returns: its published outputs and its final metrics. */
export interface StepResult<O extends Record<string, ArtifactRef>, M extends Record<string, number | string>> {
  outputs: O;
  metrics: M;
}

/** Collects metrics in memory; handy for tests and for bins that print them at the end. */
export class MemoryMetrics implements MetricsSink {
  readonly values: { key: string; value: number; step: number | undefined }[] = [];
  metric(key: string, value: number, step?: number): void {
    this.values.push({ key, value, step });
  }
}

// ---------------------------------------------------------------------------------------------
// Parameters

export type ParamValue = string | number | boolean;
export type ParamType = "integer" | "number" | "boolean" | "string" | "path";

/** One parameter of a step: how to read it from text, its default, and what it means. */
export interface ParamDef<T extends ParamValue> {
  type: ParamType;
  /** Undefined: optional, and absent unless given. */
  default: T | undefined;
  choices?: readonly T[];
  doc: string;
  /** The driver's `-P` name when it is not `<step>_<snake_case field>` (the seed's unprefixed names). */
  name?: string;
  /** Why this parameter cannot change a result; it then stays out of the cache key. */
  notInKey?: string;
  /** Another parameter (driver name) whose value this one takes when it is not given. */
  defaultFrom?: string;
  /** Text from `-P` or a flag to a typed value; throws BadParameterError naming `label`. */
  parse(text: string, label: string): T;
}

interface ParamOptions<T> {
  default?: T;
  doc: string;
  name?: string;
  notInKey?: string;
  defaultFrom?: string;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

function parseNumber(text: string, label: string, integer: boolean): number {
  const trimmed = text.trim();
  const n = Number(trimmed);
  if (trimmed === "" || !Number.isFinite(n)) throw new BadParameterError(label, `"${text}" is not a number`);
  if (integer && !Number.isSafeInteger(n)) throw new BadParameterError(label, `"${text}" is not an integer`);
  return n;
}

/** Builders for parameter definitions; the value type follows from the builder. */
export const param = {
  integer: (o: ParamOptions<number>): ParamDef<number> => ({ type: "integer", default: o.default, ...o, parse: (t, l) => parseNumber(t, l, true) }),
  number: (o: ParamOptions<number>): ParamDef<number> => ({ type: "number", default: o.default, ...o, parse: (t, l) => parseNumber(t, l, false) }),
  boolean: (o: ParamOptions<boolean>): ParamDef<boolean> => ({
    type: "boolean",
    default: o.default,
    ...o,
    parse(text, label) {
      const t = text.trim().toLowerCase();
      if (TRUE.has(t)) return true;
      if (FALSE.has(t)) return false;
      throw new BadParameterError(label, `"${text}" is not true or false`);
    },
  }),
  string: (o: ParamOptions<string>): ParamDef<string> => ({ type: "string", default: o.default, ...o, parse: (t) => t }),
  /** A file or directory; relative paths are resolved against the working directory at the edge. */
  path: (o: ParamOptions<string>): ParamDef<string> => ({
    type: "path",
    default: o.default,
    ...o,
    parse(text, label) {
      if (text.trim() === "") throw new BadParameterError(label, "is an empty path");
      return path.resolve(text);
    },
  }),
  choice<const C extends readonly string[]>(choices: C, o: ParamOptions<C[number]>): ParamDef<C[number]> {
    return {
      type: "string",
      default: o.default,
      choices,
      ...o,
      parse(text, label) {
        const t = text.trim();
        const found = choices.find((c) => c === t);
        if (found === undefined) throw new BadParameterError(label, `"${text}" is not one of ${choices.join(", ")}`);
        return found;
      },
    };
  },
};

/** A step's parameters: a flat record of plain values (optional fields may be absent). */
export type StepParams<P> = { [K in keyof P]: ParamValue | undefined };

/** One definition per field of the parameter type. */
export type ParamDefs<P extends StepParams<P>> = { [K in keyof P & string]-?: ParamDef<Exclude<P[K], undefined>> };

/** A parameter as the driver lists it: the step's definition under the driver's name. */
export interface ParamSpec {
  /** The driver's name (`als_max_iter`). */
  name: string;
  step: string;
  /** The field of the step's params (`maxIter`). */
  field: string;
  type: ParamType;
  default: ParamValue | undefined;
  choices?: readonly ParamValue[];
  doc: string;
  inKey: boolean;
  notInKey?: string;
  defaultFrom?: string;
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// ---------------------------------------------------------------------------------------------
// Steps

/** Output kinds by name; a step's single output is written at its `outDir`. */
export type ArtifactKinds = Readonly<Record<string, ArtifactKind>>;

export type InputRefs<I extends ArtifactKinds> = { readonly [K in keyof I]: ArtifactRef<I[K]> };

/** What a step package declares. */
export interface StepDefinition<P extends StepParams<P>, I extends ArtifactKinds, O extends ArtifactKinds> {
  name: string;
  /** The package whose built code (and what it imports) is the step's code identity. */
  code: { package: string; version: string };
  params: ParamDefs<P>;
  /** Completes and range-checks parameters (the step's own resolver); errors name the step's field names. */
  resolve(partial: Partial<P>): P;
  inputs: I;
  outputs: O;
  /** Writes the step's output artifact (manifest included) at `outDir`, which does not exist yet. */
  run(ctx: StepContext, inputs: InputRefs<I>, params: P, outDir: string): Promise<void>;
  /** A published result may depend on something outside it (a source file); false means recompute. */
  stillValid?(manifest: Manifest): Promise<boolean>;
  /** Extra facts about a published output for the run report. */
  describe?(manifest: Manifest): Record<string, unknown>;
  /** Tags for the step's tracking run from a published output (e.g. the Spark application that made it). */
  tags?(manifest: Manifest): Record<string, string>;
  /**
   * Whether a result can serve another machine through a shared (remote) cache; false for a step
   * whose output points at something on this machine (a local file's path). Default true.
   */
  shareable?: boolean;
  /** Removes what killed runs of this step left in the cache beside its entries (`ms cache gc` calls it). */
  cleaner?: StepCleaner;
}

/**
 * A step's gc hook for what it keeps in the cache root outside entries (partial downloads, say).
 * It gets the cache root and asks @ms/cache's layout for its place; it returns what it removed
 * (or, with `dryRun`, would remove).
 */
export interface StepCleaner {
  /** The key of what it removed in gc's report (`leftovers.<name>`). */
  name: string;
  /** What it removes, for gc's summary line ("partial downloads"). */
  what: string;
  clean(cacheRoot: string, options: { dryRun: boolean }): Promise<string[]>;
}

/** A step with its parameters bound: what the driver keys, logs and runs. */
export interface BoundStep {
  readonly step: Step;
  /** Every resolved parameter by field (defaults included, optional absent ones left out). */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** The parameters that enter the cache key. */
  readonly keyParams: Readonly<Record<string, ParamValue>>;
  run(ctx: StepContext, inputs: Readonly<Record<string, ArtifactRef>>, outDir: string): Promise<void>;
}

/** A definition as the driver sees it: no type parameters, so a list can hold every step. */
export interface Step {
  readonly name: string;
  readonly code: { readonly package: string; readonly version: string };
  readonly inputs: ArtifactKinds;
  readonly outputs: ArtifactKinds;
  /** The step's parameters under the driver's names. */
  readonly params: readonly ParamSpec[];
  /** Types, completes and checks raw text values given by field name. */
  bind(raw: Readonly<Record<string, string>>): BoundStep;
  stillValid(manifest: Manifest): Promise<boolean>;
  describe(manifest: Manifest): Record<string, unknown>;
  tags(manifest: Manifest): Record<string, string>;
  /** False: never pulled from or pushed to a remote cache (see StepDefinition.shareable); absent means true. */
  readonly shareable?: boolean;
  /** See StepDefinition.cleaner. */
  readonly cleaner?: StepCleaner;
}

function pickInputs<I extends ArtifactKinds>(step: string, kinds: I, given: Readonly<Record<string, ArtifactRef>>): InputRefs<I> {
  const out: Partial<Record<keyof I, ArtifactRef>> = {};
  for (const name of Object.keys(kinds) as (keyof I & string)[]) {
    const ref = given[name];
    if (!ref) throw new MissingArtifactError(`${step}: no "${name}" input (a ${kinds[name]} artifact) was given`);
    if (ref.kind !== kinds[name]) throw new MissingArtifactError(`${step}: input "${name}" is a ${ref.kind} artifact, expected ${kinds[name]}`);
    out[name] = ref;
  }
  // Every name was checked above to hold a ref of the declared kind.
  return out as InputRefs<I>;
}

/** Declares a step; the result is what the package exports and the driver lists. */
export function defineStep<P extends StepParams<P>, I extends ArtifactKinds, O extends ArtifactKinds>(def: StepDefinition<P, I, O>): Step {
  if (Object.keys(def.outputs).length !== 1) throw new Error(`step ${def.name}: exactly one output is supported, got ${Object.keys(def.outputs).join(", ") || "none"}`);
  const fields = Object.keys(def.params) as (keyof P & string)[];
  const specs: ParamSpec[] = fields.map((field) => {
    const d: ParamDef<ParamValue> = def.params[field];
    return {
      name: d.name ?? `${def.name}_${snake(field)}`,
      step: def.name,
      field,
      type: d.type,
      default: d.default,
      ...(d.choices ? { choices: d.choices } : {}),
      doc: d.doc,
      inKey: d.notInKey === undefined,
      ...(d.notInKey ? { notInKey: d.notInKey } : {}),
      ...(d.defaultFrom ? { defaultFrom: d.defaultFrom } : {}),
    };
  });
  const step: Step = {
    name: def.name,
    code: def.code,
    inputs: def.inputs,
    outputs: def.outputs,
    params: specs,
    bind(raw) {
      const partial: Partial<P> = {};
      for (const field of fields) {
        const text = raw[field];
        if (text !== undefined) partial[field] = def.params[field].parse(text, field);
      }
      for (const name of Object.keys(raw)) if (!(fields as readonly string[]).includes(name)) throw new BadParameterError(name, `step ${def.name} has no such parameter`);
      const params = def.resolve(partial);
      const all: Record<string, ParamValue> = {};
      const keyed: Record<string, ParamValue> = {};
      for (const field of fields) {
        const v = params[field];
        if (v === undefined) continue;
        all[field] = v;
        if (def.params[field].notInKey === undefined) keyed[field] = v;
      }
      return {
        step,
        params: all,
        keyParams: keyed,
        run: (ctx, inputs, outDir) => def.run(ctx, pickInputs(def.name, def.inputs, inputs), params, outDir),
      };
    },
    stillValid: (manifest) => (def.stillValid ? def.stillValid(manifest) : Promise.resolve(true)),
    describe: (manifest) => def.describe?.(manifest) ?? {},
    tags: (manifest) => def.tags?.(manifest) ?? {},
    shareable: def.shareable !== false,
    ...(def.cleaner ? { cleaner: def.cleaner } : {}),
  };
  return step;
}
