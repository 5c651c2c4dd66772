/**
 * A step's bin, generated from its definition: every parameter is a flag derived from its one
 * name (`als_max_iter` -> `--als-max-iter`), every input the steps do not make themselves is a
 * flag of its own name taking an artifact directory (`--ratings DIR`), the help comes from the
 * schema, and the last step's output goes to `--out`. A chain of steps (etl's bin runs download
 * then etl) keeps its intermediate outputs in a temporary directory removed at the end.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { assertReplaceableOutput, discardStagingDir, makeStagingDir, type ArtifactRef, type Manifest } from "./artifact.js";
import { readManifest } from "./manifest.js";
import { abortOnSignals, formatTable, runCli, type CliContext, type CliOption, type CliOptions, type CliResult } from "./cli.js";
import { digestFile } from "./digest.js";
import { BadParameterError, MissingArtifactError } from "./errors.js";
import { describeParam, type ParamSpec } from "./params.js";
import type { BoundStep, Step } from "./step.js";

export interface StepCliOptions {
  /** The bin's name (`ms-als`). */
  name: string;
  summary: string;
  /** Extra help text. */
  epilog?: string;
  /**
   * False for steps that do not watch their abort signal: Ctrl-C then ends the bin as it ends any
   * Node process, and the staging directories go with it. Default true: the first SIGINT/SIGTERM
   * aborts the step (exit 130), a second one exits at once.
   */
  abortOnSignals?: boolean;
}

/** The flag of a parameter: its name with dashes. */
export const flagOf = (name: string): string => name.replaceAll("_", "-");

/** The inputs no step of the chain produces: the bin's input flags, by name, with their kinds. */
function externalInputs(steps: readonly Step[]): Map<string, string> {
  const produced = new Set<string>();
  const out = new Map<string, string>();
  for (const step of steps) {
    for (const [name, kind] of Object.entries(step.inputs)) if (!produced.has(kind) && !out.has(name)) out.set(name, kind);
    for (const kind of Object.values(step.outputs)) produced.add(kind);
  }
  return out;
}

function paramOption(s: ParamSpec): CliOption {
  const value = s.choices
    ? s.choices.join("|")
    : s.type === "integer"
      ? "N"
      : s.type === "number"
        ? "X"
        : s.type === "path"
          ? "PATH"
          : "VALUE";
  // A switch for an off-by-default boolean; anything else takes a value.
  if (s.type === "boolean" && s.default !== true) return { type: "boolean", description: describeParam(s) };
  return { type: "string", value, description: describeParam(s) };
}

function buildOptions(steps: readonly Step[], inputs: ReadonlyMap<string, string>, last: Step): CliOptions {
  const options: CliOptions = Object.create(null) as CliOptions;
  for (const [name, kind] of inputs)
    options[flagOf(name)] = {
      type: "string",
      value: "DIR",
      description: `the ${kind} artifact: its directory, or a file the step reads as one (required)`,
    };
  const outKind = Object.values(last.outputs)[0];
  options.out = {
    type: "string",
    value: "DIR",
    description: `output directory (created; an earlier ${outKind} output there is replaced) (required)`,
  };
  for (const step of steps) for (const s of step.params) options[flagOf(s.name)] = paramOption(s);
  return options;
}

/**
 * An input flag's artifact: a directory with a manifest, or a bare file the step reads as that
 * kind (a ratings.parquet of one's own), named by its content digest.
 */
async function inputRef(flag: string, given: string, kind: string): Promise<ArtifactRef> {
  const abs = path.resolve(given);
  const st = await fs.stat(abs).catch(() => undefined);
  if (!st) throw new MissingArtifactError(`--${flag}: ${abs} does not exist`);
  if (!st.isDirectory()) return { kind, dir: abs, digest: (await digestFile(abs)).digest };
  const manifest = await readManifest(abs);
  return { kind: manifest.kind, dir: abs, digest: manifest.digest };
}

function outputsJson(step: Step, manifest: Manifest, dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(step.outputs)) {
    out[name] = {
      kind,
      dir,
      digest: manifest.digest,
      files: manifest.files.map((f) => path.join(dir, f.path)),
      ...step.describe(manifest),
    };
  }
  return out;
}

/** Text values of the flags that are `step`'s parameters, by parameter name. */
function rawParams(step: Step, flags: Readonly<Record<string, unknown>>): Map<string, string> {
  const raw = new Map<string, string>();
  for (const s of step.params) {
    const v = flags[flagOf(s.name)];
    if (v !== undefined && v !== false) raw.set(s.name, String(v));
  }
  return raw;
}

/** Runs bound steps in order into `target` (the last) and a scratch directory beside it (the others, removed after). */
async function runChain(
  bound: readonly BoundStep[],
  given: ReadonlyMap<string, ArtifactRef>,
  target: string,
  ctx: CliContext,
  o: StepCliOptions,
): Promise<void> {
  const interrupt = o.abortOnSignals === false ? undefined : abortOnSignals(ctx.logger);
  // Beside --out and removed on the way out, a signal included.
  const scratch = bound.length > 1 ? await makeStagingDir(`${target}-steps`) : undefined;
  try {
    const byKind = new Map<string, ArtifactRef>();
    for (const [i, b] of bound.entries()) {
      const dir = i === bound.length - 1 || !scratch ? target : path.join(scratch, b.step.name);
      const refs: Record<string, ArtifactRef> = {};
      for (const [name, kind] of Object.entries(b.step.inputs)) {
        const ref = byKind.get(kind) ?? given.get(name);
        if (ref) refs[name] = ref;
      }
      await b.run({ logger: ctx.logger, progress: ctx.interactive, ...(interrupt ? { signal: interrupt.signal } : {}) }, refs, dir);
      const manifest = await readManifest(dir);
      for (const kind of Object.values(b.step.outputs)) byKind.set(kind, { kind, dir, digest: manifest.digest });
    }
  } finally {
    interrupt?.dispose();
    if (scratch) await discardStagingDir(scratch);
  }
}

/** What the bin prints: the output's directory, digest and files, and its metrics. */
function printed(last: Step, manifest: Manifest, target: string): CliResult {
  const metrics = manifest.metrics as Record<string, unknown>;
  const rows = Object.entries(metrics).map(([k, v]) => [k, typeof v === "number" ? v : String(v)]);
  return {
    json: { outputs: outputsJson(last, manifest, target), metrics },
    text: [
      formatTable([
        [Object.values(last.outputs)[0], target],
        ["digest", manifest.digest],
      ]),
      "",
      formatTable(rows, ["metric", "value"]),
    ].join("\n"),
  };
}

/** Runs one step, or a chain of steps whose later inputs are earlier outputs (matched by kind), as a bin. */
export async function runStepCli(
  steps: Step | readonly Step[],
  o: StepCliOptions,
  argv: readonly string[] = process.argv.slice(2),
): Promise<number> {
  const chain: readonly Step[] = Array.isArray(steps) ? steps : [steps as Step];
  const last = chain[chain.length - 1];
  const inputs = externalInputs(chain);
  const usage = `${o.name} ${[...inputs.keys()].map((n) => `--${flagOf(n)} DIR `).join("")}--out DIR [--${flagOf(last.params[0]?.name ?? "param")} ...] [--json]`;
  return runCli(
    {
      name: o.name,
      summary: o.summary,
      usage,
      options: buildOptions(chain, inputs, last),
      epilog: [o.epilog, "Every parameter flag is the ms run parameter of the same name (-P als_max_iter=20 is --als-max-iter 20)."]
        .filter(Boolean)
        .join("\n"),
      async run(values, _positionals, ctx): Promise<CliResult> {
        const flags = values as Readonly<Record<string, string | boolean | undefined>>;
        const text = (flag: string) => (typeof flags[flag] === "string" ? (flags[flag] as string) : undefined);
        const given = new Map<string, ArtifactRef>();
        for (const [name, kind] of inputs) {
          const dir = text(flagOf(name));
          if (!dir) throw new BadParameterError(`--${flagOf(name)}`, "is required");
          given.set(name, await inputRef(flagOf(name), dir, kind));
        }
        const out = text("out");
        if (!out) throw new BadParameterError("--out", "is required");
        const target = path.resolve(out);
        await assertReplaceableOutput(target, Object.values(last.outputs)[0]);
        // Every step binds before any runs: a bad parameter of the last step costs nothing.
        const bound = chain.map((step) => step.bind(rawParams(step, flags)));
        await runChain(bound, given, target, ctx, o);
        return printed(last, await readManifest(target), target);
      },
    },
    argv,
  );
}
