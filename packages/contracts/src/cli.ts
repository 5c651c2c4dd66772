/**
 * The plumbing every bin shares: flag parsing (negative numbers included), `--help`, `--json`,
 * `--log-level`, and the single place where errors become messages on stderr and exit codes.
 * A bin only declares its flags and calls its library.
 */
import { parseArgs } from "node:util";
import type { Logger } from "pino";
import { BadParameterError, exitCodeFor, EXIT_CODES, InterruptedError, MsError } from "./errors.js";
import { createLogger, isLogLevel, LOG_LEVELS } from "./logger.js";
import { closestName } from "./params.js";
import { terminalSafe } from "./terminal.js";

export interface CliOption {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Shown in `--help`, e.g. `PATH` or `N`. */
  value?: string;
  description: string;
}

export type CliOptions = Record<string, CliOption>;

type Values<O extends CliOptions> = {
  [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : O[K]["multiple"] extends true ? string[] : string;
};

export interface CliContext {
  logger: Logger;
  json: boolean;
  /** True when stderr is a terminal: draw progress. */
  interactive: boolean;
}

export interface CliResult {
  /** The one JSON document printed with `--json`; undefined when the command printed it itself (`ms serve`, once listening). */
  json: unknown;
  /** What a person sees on stdout without `--json`. */
  text?: string;
}

export interface CliSpec<O extends CliOptions> {
  name: string;
  summary: string;
  usage: string;
  options: O;
  /** Extra help text (exit codes are added automatically). */
  epilog?: string;
  allowPositionals?: boolean;
  run(values: Values<O>, positionals: string[], ctx: CliContext): Promise<CliResult>;
}

const COMMON: CliOptions = {
  json: { type: "boolean", description: "print exactly one JSON document on stdout (logs stay on stderr)" },
  "log-level": { type: "string", value: "LEVEL", description: `${LOG_LEVELS.join("|")} (default: $LOG_LEVEL or info)` },
  help: { type: "boolean", short: "h", description: "show this help" },
};

const NEGATIVE_NUMBER = /^-\d/;

/**
 * `util.parseArgs` reads `--max-row-limit -1` as a flag named `1`; glue a negative number to the
 * string option before it so both spellings work.
 */
export function normalizeArgv(argv: readonly string[], options: CliOptions): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    const next = argv[i + 1];
    const name = token.startsWith("--") ? token.slice(2) : undefined;
    if (name && !name.includes("=") && options[name]?.type === "string" && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${token}=${next}`);
      i++;
    } else {
      out.push(token);
    }
  }
  return out;
}

export function formatHelp<O extends CliOptions>(spec: CliSpec<O>): string {
  const all: CliOptions = { ...spec.options, ...COMMON };
  const rows = Object.entries(all).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  const exits = Object.entries(EXIT_CODES)
    .map(([code, n]) => `${n} ${code.toLowerCase()}`)
    .join(", ");
  return [
    `${spec.name}: ${spec.summary}`,
    "",
    `Usage: ${spec.usage}`,
    "",
    "Options:",
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`),
    ...(spec.epilog ? ["", spec.epilog] : []),
    "",
    `Exit codes: 0 ok, ${exits}.`,
    "",
  ].join("\n");
}

/** Parses argv and runs the command; sets `process.exitCode` rather than calling `exit`. */
export async function runCli<O extends CliOptions>(spec: CliSpec<O>, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const wantsJson = argv.includes("--json");
  let logger: Logger | undefined;
  try {
    const all: CliOptions = { ...spec.options, ...COMMON };
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: normalizeArgv(argv, all),
        options: Object.fromEntries(
          Object.entries(all).map(([k, o]) => [
            k,
            { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
          ]),
        ),
        allowPositionals: spec.allowPositionals ?? false,
        strict: true,
      });
    } catch (error) {
      const unknown = /Unknown option '--([^']+)'/.exec((error as Error).message)?.[1];
      const near = unknown === undefined ? undefined : closestName(unknown, Object.keys(all));
      const hint = near ? ` (did you mean --${near}?)` : "";
      throw new MsError("BAD_PARAMETER", `${(error as Error).message}${hint}\nRun '${spec.name} --help' for the list of options.`);
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      process.stdout.write(formatHelp(spec));
      return finish(0);
    }
    const level = (values["log-level"] as string | undefined) ?? process.env.LOG_LEVEL;
    if (level !== undefined && !isLogLevel(level))
      throw new BadParameterError("--log-level", `"${level}" is not one of ${LOG_LEVELS.join(", ")}`);
    logger = createLogger({ level, name: spec.name });
    const ctx: CliContext = { logger, json: Boolean(values.json), interactive: Boolean(process.stderr.isTTY) };
    const result = await spec.run(values as Values<O>, parsed.positionals, ctx);
    if (ctx.json && result.json !== undefined) process.stdout.write(JSON.stringify(result.json, null, 2) + "\n");
    else if (result.text) process.stdout.write(terminalSafe(result.text.endsWith("\n") ? result.text : `${result.text}\n`));
    return finish(0);
  } catch (error) {
    const code = exitCodeFor(error);
    const message = error instanceof Error ? error.message : String(error);
    if (code === EXIT_CODES.INTERNAL) logger?.error({ err: error }, "unexpected failure");
    process.stderr.write(`${spec.name}: error: ${terminalSafe(message)}\n`);
    if (wantsJson) {
      const kind = error instanceof MsError ? error.code : "INTERNAL";
      process.stdout.write(JSON.stringify({ error: { code: kind, message, exitCode: code } }, null, 2) + "\n");
    }
    return finish(code);
  }
}

function finish(code: number): number {
  process.exitCode = code;
  return code;
}

/** Parses an integer flag value, naming the flag when it is not one. */
export function parseIntegerFlag(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw.trim());
  if (raw.trim() === "" || !Number.isInteger(value)) throw new BadParameterError(name, `"${raw}" is not an integer`);
  return value;
}

/** Parses a number flag value, naming the flag when it is not a finite number. */
export function parseNumberFlag(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw.trim());
  if (raw.trim() === "" || !Number.isFinite(value)) throw new BadParameterError(name, `"${raw}" is not a finite number`);
  return value;
}

/** A fixed-width text table for the human summary of a bin. */
export function formatTable(rows: readonly (readonly (string | number)[])[], header?: readonly string[]): string {
  const all = header ? [header, ...rows] : rows;
  const cells = all.map((r) => r.map((c) => (typeof c === "number" ? formatNumber(c) : c)));
  // A loop, not Math.max(...column): spreading hundreds of thousands of rows as arguments overflows the call stack.
  const widths: number[] = (cells[0] ?? []).map(() => 0);
  for (const r of cells) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i], (r[i] ?? "").length);
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  const out = cells.map(line);
  if (header) out.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  return out.join("\n");
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(1) : n.toPrecision(4);
}

/**
 * Ctrl-C as every bin honours it: the first SIGINT or SIGTERM aborts the returned signal (the work
 * stops at its next check, cleans up, and the bin exits 130); a second one exits at once. Call
 * `dispose` when the work is over, so a later signal gets Node's default again.
 */
export function abortOnSignals(logger: Logger, what = "stopping"): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT_CODES.INTERRUPTED);
    logger.warn(`${sig}: ${what} (again to quit at once)`);
    controller.abort(new InterruptedError(`interrupted by ${sig}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
