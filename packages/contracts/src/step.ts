/**
 * The step contract. A step is a declared definition around a function: its name and code
 * identity, a parameter schema (params.ts: one name per parameter, types, defaults, ranges, docs,
 * which parameters stay out of the cache key), named inputs and outputs by artifact kind, and
 * `run`. The driver holds a list of definitions and runs them generically, and each step's bin is
 * generated from its definition (step-cli.ts), so help, `-P` parsing, flags, the cache key,
 * tracking (the MLproject entry point a child run is named by), the run's summary line and the
 * report all come from here; adding a step is its package plus one line in the driver.
 *
 * Steps report through the context only, so they run the same whether a bin, a test or the driver
 * (which forwards metrics to a tracker) calls them.
 */
import type { Logger } from "pino";
import type { ArtifactKind, ArtifactRef, Manifest, ManifestMetrics } from "./manifest.js";
import { MissingArtifactError } from "./errors.js";
import {
  paramResolver,
  paramSpecs,
  parseRawParams,
  type ParamDefs,
  type ParamSpec,
  type ParamValue,
  type RawParams,
  type StepParams,
} from "./params.js";

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
// Steps

/** Output kinds by name; a step's single output is written at its `outDir`. */
export type ArtifactKinds = Readonly<Record<string, ArtifactKind>>;

export type InputRefs<I extends ArtifactKinds> = { readonly [K in keyof I]: ArtifactRef<I[K]> };

/** A published output as a run reports it: the artifact reference and the step's `describe` facts. */
export type StepOutput = ArtifactRef & Readonly<Record<string, unknown>>;

/** What a step package declares. */
export interface StepDefinition<P extends StepParams<P>, I extends ArtifactKinds, O extends ArtifactKinds> {
  name: string;
  /** The MLflow MLproject entry point the step stands for (its child run's name and entry point tag); default `name`. */
  entryPoint?: string;
  /** The package whose built code (and what it imports) is the step's code identity. */
  code: { package: string; version: string };
  /** The schema: keyed by the `-P` names, which are also the keys of the params `run` receives. */
  params: ParamDefs<P>;
  /**
   * What the schema cannot say alone, given every parameter checked and defaulted: defaults that
   * depend on another parameter, and cross-parameter checks. The package exports the same resolver
   * (`paramResolver(schema, this)`) for library callers.
   */
  resolve?(params: P): P;
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
   * The step's text on its line of a run's summary (`rows=100000 duplicates_dropped=0`), from its
   * final metrics and its outputs as the run reports them; default: every metric (`metricsText`).
   */
  headline?(metrics: Readonly<ManifestMetrics>, outputs: Readonly<Record<string, StepOutput>>): string;
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
  /** Every resolved parameter by name (defaults included, optional absent ones left out). */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** The parameters that enter the cache key. */
  readonly keyParams: Readonly<Record<string, ParamValue>>;
  run(ctx: StepContext, inputs: Readonly<Record<string, ArtifactRef>>, outDir: string): Promise<void>;
}

/** A definition as the driver sees it: no type parameters, so a list can hold every step. */
export interface Step {
  readonly name: string;
  /** See StepDefinition.entryPoint; the step's name when the definition gives none. */
  readonly entryPoint: string;
  readonly code: { readonly package: string; readonly version: string };
  readonly inputs: ArtifactKinds;
  readonly outputs: ArtifactKinds;
  readonly params: readonly ParamSpec[];
  /** Types, completes and checks raw text values by name (a name the step lacks is an unknown parameter). */
  bind(raw: RawParams): BoundStep;
  stillValid(manifest: Manifest): Promise<boolean>;
  describe(manifest: Manifest): Record<string, unknown>;
  tags(manifest: Manifest): Record<string, string>;
  /** See StepDefinition.headline. */
  headline(metrics: Readonly<ManifestMetrics>, outputs: Readonly<Record<string, StepOutput>>): string;
  /** False: never pulled from or pushed to a remote cache (see StepDefinition.shareable); absent means true. */
  readonly shareable?: boolean;
  /** See StepDefinition.cleaner. */
  readonly cleaner?: StepCleaner;
}

/**
 * Metrics as `key=value` words, in the order of `keys` (default: every metric); a metric that is
 * absent or null is left out, a fraction is shown to four significant digits.
 */
export function metricsText(metrics: Readonly<ManifestMetrics>, keys: readonly string[] = Object.keys(metrics)): string {
  const words: string[] = [];
  for (const k of keys) {
    const v = metrics[k];
    if (typeof v === "number") words.push(`${k}=${Number.isInteger(v) ? String(v) : Number(v.toPrecision(4))}`);
  }
  return words.join(" ");
}

function pickInputs<I extends ArtifactKinds>(step: string, kinds: I, given: Readonly<Record<string, ArtifactRef>>): InputRefs<I> {
  const out: Partial<Record<keyof I, ArtifactRef>> = {};
  for (const name of Object.keys(kinds) as (keyof I & string)[]) {
    const ref = given[name];
    if (!ref) throw new MissingArtifactError(`${step}: no "${name}" input (a ${kinds[name]} artifact) was given`);
    if (ref.kind !== kinds[name])
      throw new MissingArtifactError(`${step}: input "${name}" is a ${ref.kind} artifact, expected ${kinds[name]}`);
    out[name] = ref;
  }
  // Every name was checked above to hold a ref of the declared kind.
  return out as InputRefs<I>;
}

/** Declares a step; the result is what the package exports and the driver lists. */
export function defineStep<P extends StepParams<P>, I extends ArtifactKinds, O extends ArtifactKinds>(def: StepDefinition<P, I, O>): Step {
  if (Object.keys(def.outputs).length !== 1)
    throw new Error(`step ${def.name}: exactly one output is supported, got ${Object.keys(def.outputs).join(", ") || "none"}`);
  const resolve = paramResolver(def.params, def.resolve?.bind(def));
  const specs = paramSpecs(def.name, def.params);
  const step: Step = {
    name: def.name,
    entryPoint: def.entryPoint ?? def.name,
    code: def.code,
    inputs: def.inputs,
    outputs: def.outputs,
    params: specs,
    bind(raw) {
      const params = resolve(parseRawParams(def.params, raw));
      const all: Record<string, ParamValue> = {};
      const keyed: Record<string, ParamValue> = {};
      for (const s of specs) {
        const v = params[s.name as keyof P];
        if (v === undefined) continue;
        all[s.name] = v;
        if (s.inKey) keyed[s.name] = v;
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
    headline: (metrics, outputs) => (def.headline ? def.headline(metrics, outputs) : metricsText(metrics)),
    shareable: def.shareable !== false,
    ...(def.cleaner ? { cleaner: def.cleaner } : {}),
  };
  return step;
}
