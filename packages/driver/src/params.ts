/**
 * `-P key=value` parameters in the seed's style. The list is derived from each step package's own
 * defaults (`resolve*Params({})`, `ALS_PARAM_NAMES`, `SYNTHETIC_DEFAULTS`), so a parameter added
 * to a step shows up here without a copy; values are typed from those defaults and then validated
 * by the step's own `resolve*Params`, whose errors are renamed to the driver's names.
 *
 * Resolution is a pure function of (the raw strings, the step packages' code, the core count), so
 * its result is memoised in the cache's meta/ directory: a fully cached run never imports @ms/etl
 * or @ms/als (which load DuckDB) just to learn their defaults.
 */
import { availableParallelism } from "node:os";
import { BadParameterError, canonicalJson, sha256Hex } from "@ms/contracts";
import { codeIdentity, selfIdentity, STEP_PACKAGES } from "./code.js";
import type { CacheStore } from "./storage.js";

export const STEPS = ["download", "etl", "als", "keras"] as const;
export type StepName = (typeof STEPS)[number];

export interface ParamSpec {
  /** The driver's name (`als_max_iter`). */
  name: string;
  step: StepName;
  /** The field of the step's params object (`maxIter`). */
  field: string;
  type: "number" | "boolean" | "string";
  default: string | number | boolean;
  choices?: readonly string[];
  /** False for parameters that cannot change the result; they are left out of the cache key. */
  inKey: boolean;
  note?: string;
}

/** Parameters that cannot change a step's output, with the reason (shown in help and README). */
export const NOT_IN_KEY: Readonly<Record<string, string>> = {
  als_num_threads: "@ms/als gives bit-identical factors for any thread count (its threads test checks it)",
};

/** Seed-style names kept without a step prefix. */
const UNPREFIXED: Readonly<Record<string, string>> = {
  "etl.maxRowLimit": "max_row_limit",
  "als.splitProp": "split_prop",
  "als.seed": "seed",
  "download.rows": "synthetic_rows",
  "download.seed": "synthetic_seed",
};

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export type ResolvedParams = {
  download: { rows: number; seed: number };
  etl: Record<string, unknown>;
  als: Record<string, unknown>;
  keras: Record<string, unknown>;
};

export interface ParamResolution {
  catalog: ParamSpec[];
  resolved: ResolvedParams;
  /** Every parameter under its driver name, resolved (defaults included). */
  flat: Record<string, string | number | boolean>;
}

type Modules = { etl: typeof import("@ms/etl"); als: typeof import("@ms/als"); keras: typeof import("@ms/keras") };

let modulesPromise: Promise<Modules> | undefined;
/** Loads the three step packages (DuckDB comes with @ms/etl); only when a step or the catalog needs them. */
export function stepModules(): Promise<Modules> {
  modulesPromise ??= Promise.all([import("@ms/etl"), import("@ms/als"), import("@ms/keras")]).then(([etl, als, keras]) => ({ etl, als, keras }));
  return modulesPromise;
}

function specOf(step: StepName, field: string, value: unknown, name: string, choices?: readonly string[]): ParamSpec {
  const type = typeof value === "number" ? "number" : typeof value === "boolean" ? "boolean" : "string";
  const note = NOT_IN_KEY[name];
  return { name, step, field, type, default: value as string | number | boolean, ...(choices ? { choices } : {}), inKey: note === undefined, ...(note ? { note } : {}) };
}

/** The full parameter list, built from the step packages' defaults. */
export function buildCatalog(m: Modules): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const [field, value] of Object.entries({ rows: m.etl.SYNTHETIC_DEFAULTS.rows, seed: m.etl.SYNTHETIC_DEFAULTS.seed })) {
    out.push(specOf("download", field, value, UNPREFIXED[`download.${field}`]));
  }
  for (const [field, value] of Object.entries(m.etl.resolveEtlParams({}))) {
    if (value === undefined) continue;
    out.push(specOf("etl", field, value, UNPREFIXED[`etl.${field}`] ?? `etl_${snake(field)}`));
  }
  const alsNames = m.als.ALS_PARAM_NAMES as Record<string, string>;
  for (const [field, value] of Object.entries(m.als.resolveAlsParams({}))) {
    if (value === undefined) continue;
    const spec = specOf("als", field, value, UNPREFIXED[`als.${field}`] ?? `als_${alsNames[field] ?? snake(field)}`);
    if (field === "seed") spec.note = "the train/test split and ALS initialisation; keras_seed defaults to it";
    if (field === "splitProp") spec.note = "the train/test split (keras reuses the one als made)";
    out.push(spec);
  }
  const kerasChoices: Record<string, readonly string[]> = { backend: m.keras.BACKEND_CHOICES, features: m.keras.FEATURE_SETS };
  for (const [field, value] of Object.entries(m.keras.resolveKerasParams({}))) {
    if (value === undefined) continue;
    const spec = specOf("keras", field, value, `keras_${snake(field)}`, kerasChoices[field]);
    if (field === "seed") spec.note = "defaults to the value of seed";
    out.push(spec);
  }
  return out;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

function parseValue(spec: ParamSpec, raw: string): string | number | boolean {
  const text = raw.trim();
  if (spec.type === "number") {
    const n = Number(text);
    if (text === "" || !Number.isFinite(n)) throw new BadParameterError(spec.name, `"${raw}" is not a number (default ${String(spec.default)})`);
    return n;
  }
  if (spec.type === "boolean") {
    if (TRUE.has(text.toLowerCase())) return true;
    if (FALSE.has(text.toLowerCase())) return false;
    throw new BadParameterError(spec.name, `"${raw}" is not true or false`);
  }
  if (spec.choices && !spec.choices.includes(text)) throw new BadParameterError(spec.name, `"${raw}" is not one of ${spec.choices.join(", ")}`);
  return text;
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

/** Renames a step's own parameter name in its error to the driver's (`hidden_units` -> `keras_hidden_units`). */
function renamed(error: unknown, step: StepName, catalog: readonly ParamSpec[], alsNames: Record<string, string>): unknown {
  if (!(error instanceof BadParameterError)) return error;
  const local = error.parameter;
  const spec = catalog.find((s) => s.step === step && (snake(s.field) === local || alsNames[s.field] === local || s.field === local));
  if (!spec) return error;
  const detail = error.message.replace(/^parameter [^:]+: /, "");
  return new BadParameterError(spec.name, `${detail}; valid parameters: ${validList(catalog)}`);
}

/** Types, completes and validates raw `-P` values with the step packages loaded. */
export function resolveWith(m: Modules, raw: Readonly<Record<string, string>>): ParamResolution {
  const catalog = buildCatalog(m);
  const byName = new Map(catalog.map((s) => [s.name, s]));
  const partial: Record<StepName, Record<string, unknown>> = { download: {}, etl: {}, als: {}, keras: {} };
  for (const [name, value] of Object.entries(raw)) {
    const spec = byName.get(name);
    if (!spec) throw new BadParameterError(name, `unknown parameter; valid parameters: ${validList(catalog)} (see 'ms run --help')`);
    partial[spec.step][spec.field] = parseValue(spec, value);
  }
  if (partial.keras.seed === undefined && partial.als.seed !== undefined) partial.keras.seed = partial.als.seed;
  const alsNames = m.als.ALS_PARAM_NAMES as Record<string, string>;
  const attempt = <T>(step: StepName, fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      throw renamed(error, step, catalog, alsNames);
    }
  };
  const rows = (partial.download.rows as number | undefined) ?? m.etl.SYNTHETIC_DEFAULTS.rows;
  const seed = (partial.download.seed as number | undefined) ?? m.etl.SYNTHETIC_DEFAULTS.seed;
  if (!Number.isInteger(rows) || rows < 1) throw new BadParameterError("synthetic_rows", `must be an integer >= 1, got ${rows}`);
  if (!Number.isInteger(seed)) throw new BadParameterError("synthetic_seed", `must be an integer, got ${seed}`);
  const resolved: ResolvedParams = {
    download: { rows, seed },
    etl: attempt("etl", () => m.etl.resolveEtlParams(partial.etl) as unknown as Record<string, unknown>),
    als: attempt("als", () => m.als.resolveAlsParams(partial.als) as unknown as Record<string, unknown>),
    keras: attempt("keras", () => m.keras.resolveKerasParams(partial.keras) as unknown as Record<string, unknown>),
  };
  const flat: Record<string, string | number | boolean> = {};
  for (const s of catalog) {
    const v = (resolved[s.step] as Record<string, unknown>)[s.field];
    if (v !== undefined) flat[s.name] = v as string | number | boolean;
  }
  return { catalog, resolved, flat };
}

/**
 * Resolves raw `-P` values, from the memo when this exact input was resolved before by the same
 * code on a machine with the same core count (als_num_threads defaults to it).
 */
export async function resolveParams(raw: Readonly<Record<string, string>>, store: CacheStore | undefined): Promise<ParamResolution> {
  const codes = await Promise.all([...STEP_PACKAGES.map((p) => codeIdentity(p)), selfIdentity()]);
  const memoName = `params-${sha256Hex(canonicalJson({ v: 1, raw, codes: codes.map((c) => c.codeDigest), cores: availableParallelism() })).slice(0, 40)}.json`;
  const memo = store ? await store.readMeta<ParamResolution>(memoName) : undefined;
  if (memo && Array.isArray(memo.catalog) && memo.resolved?.keras) return memo;
  const result = resolveWith(await stepModules(), raw);
  if (store) await store.writeMeta(memoName, result);
  return result;
}

/** The subset of a step's resolved parameters that enters its cache key. */
export function keyParams(step: StepName, resolution: ParamResolution): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const own = resolution.resolved[step] as Record<string, unknown>;
  for (const s of resolution.catalog) if (s.step === step && s.inKey) out[s.field] = own[s.field];
  return out;
}

/** A step's parameters under the driver's names (what the child run logs). */
export function namedParams(step: StepName, resolution: ParamResolution): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const s of resolution.catalog) if (s.step === step && resolution.flat[s.name] !== undefined) out[s.name] = resolution.flat[s.name];
  return out;
}
