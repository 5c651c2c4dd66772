/**
 * Logging for every bin and library: pino, always on stderr (stdout belongs to `--json`),
 * human-readable on a terminal and JSON lines otherwise.
 */
import pino, { type LogFn, type Logger } from "pino";
import { terminalSafe } from "./terminal.js";
import { createRequire } from "node:module";

export type { Logger } from "pino";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Force pretty (true) or JSON (false) output; default: pretty when stderr is a terminal. */
  pretty?: boolean;
  /** Where JSON lines go instead of stderr (tests capture logs with it). */
  destination?: NodeJS.WritableStream;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** pino-pretty costs ~40 ms to load; only a terminal needs it. */
type Pretty = typeof import("pino-pretty");
function loadPretty(): Pretty {
  const required = createRequire(import.meta.url)("pino-pretty") as Pretty & { default?: Pretty };
  return required.default ?? required;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  const usePretty = options.pretty ?? (options.destination ? false : Boolean(process.stderr.isTTY));
  const stream = options.destination
    ? options.destination
    : usePretty
      ? loadPretty()({ destination: 2, sync: true, colorize: true, ignore: "pid,hostname", translateTime: "HH:MM:ss.l" })
      : pino.destination({ fd: 2, sync: true });
  // On a terminal, others' text in a message or field (a title, a bucket's record) is shown, never obeyed.
  const hooks = usePretty ? { logMethod: safeLogMethod } : undefined;
  return pino({ level: isLogLevel(level) ? level : "info", name: options.name, base: undefined, ...(hooks ? { hooks } : {}) }, stream);
}

/** A log call with its string arguments and an object's string fields made terminal-safe. */
function safeLogMethod(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const safe = args.map((a: unknown) => (typeof a === "string" ? terminalSafe(a) : isPlainRecord(a) ? safeFields(a) : a));
  Reflect.apply(method, this, safe);
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Error);
}

function safeFields(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = typeof v === "string" ? terminalSafe(v) : v;
  return out;
}

/** A logger that drops everything: the default for library calls that were given none. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
