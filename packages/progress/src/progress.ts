/**
 * Live progress of `ms run` on a terminal: one line per step, redrawn in place by log-update
 * (what the step is doing, its latest iteration or epoch, loss, rate, elapsed time and an ETA),
 * then the summary. A step's info records feed its line instead of scrolling past, through two
 * fields only: `status` (a short text a step sets for this line; a log message is never reused as
 * one) and an iteration or epoch count (`iteration` or `epoch`, with `of`). Warnings and errors
 * are printed above the lines. Used only when stderr is a terminal: piped, stderr stays JSON lines.
 */
import { Writable } from "node:stream";
import { createLogger, terminalSafe, type Logger } from "@ms/contracts";
import { createLogUpdate } from "log-update";

interface StepLine {
  step: string;
  started: number;
  status: string;
  done?: string;
  /**
   * Epochs, iterations or fits: the first count seen and when, and the latest. The rate is taken
   * between the two, not from the step's start, which includes loading data and compiling; `eta`
   * (seconds at `at`) is the step's own estimate when it gives one (fm's fits are not all alike).
   */
  unit?: { kind: string; total: number; first: number; firstAt: number; done: number; at: number; eta?: number };
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const LEVEL_NAMES: Record<number, string> = { 40: "WARN", 50: "ERROR", 60: "FATAL" };

function seconds(ms: number): string {
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function num(v: unknown): string {
  return typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString("en-US") : String(Number(v.toPrecision(4)))) : String(v);
}

/** The count a record reports ("iteration 2/10", "epoch 1/3", "fit 2/4"), if any. */
function unitOf(record: Record<string, unknown>): { kind: string; done: number; total: number } | undefined {
  const total = record.of;
  if (typeof total !== "number" || !(total > 0)) return undefined;
  for (const kind of ["epoch", "iteration", "fit"]) {
    const done = record[kind];
    if (typeof done !== "number") continue;
    // Keras reports batches of the epoch in progress (epoch 1, batch 3 of 10: 0.3 epochs done).
    const { batch, batches } = record;
    if (typeof batch === "number" && typeof batches === "number" && batches > 0) return { kind, done: done - 1 + batch / batches, total };
    return { kind, done, total };
  }
  return undefined;
}

/** Fields that are not worth a glance on a status line. */
const QUIET = new Set([
  "level",
  "time",
  "name",
  "msg",
  "step",
  "pid",
  "hostname",
  "status",
  "of",
  "epoch",
  "iteration",
  "fit",
  "etaSeconds",
]);

/**
 * A step's status line from one of its info records: its `status`, or its count followed by the
 * record's short numeric fields (`loss=0.25`); undefined when the record says neither.
 */
function statusOf(record: Record<string, unknown>): string | undefined {
  if (typeof record.status === "string") return record.status;
  const unit = unitOf(record);
  if (!unit) return undefined;
  const fields = Object.entries(record)
    .filter(([k, v]) => !QUIET.has(k) && typeof v === "number")
    .slice(0, 5)
    .map(([k, v]) => `${k}=${num(v)}`);
  return [`${unit.kind} ${String(record[unit.kind])}/${unit.total}`, ...fields].join("  ");
}

/** Seconds left at `now`: the time per unit between the first and the latest count, times the units left, less the time since. */
function etaMs(unit: NonNullable<StepLine["unit"]>, now: number): number | undefined {
  if (unit.eta !== undefined && unit.done < unit.total) return Math.max(0, unit.eta * 1000 - (now - unit.at));
  if (unit.done <= unit.first || unit.done >= unit.total) return undefined;
  const perUnit = (unit.at - unit.firstAt) / (unit.done - unit.first);
  return Math.max(0, perUnit * (unit.total - unit.done) - (now - unit.at));
}

/**
 * The terminal as log-update sees it: a terminal that reports no size (0 rows: some ptys) would
 * make log-update draw nothing, so it gets a default one.
 */
class SizedTerminal extends Writable {
  constructor(private readonly tty: Terminal) {
    super({
      decodeStrings: false,
      write: (chunk: string | Buffer, _enc, done) => {
        tty.write(chunk);
        done();
      },
    });
  }
  get rows(): number {
    return this.tty.rows || 24;
  }
  get columns(): number {
    return this.tty.columns || 100;
  }
}

/** What the lines are drawn on: a terminal's stream (process.stderr), or anything that writes and has a size. */
export interface Terminal {
  write(chunk: string | Uint8Array): unknown;
  columns?: number;
  rows?: number;
}

/** A parsed JSON value that is an object (a log record). */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class LiveProgress {
  private readonly lines: StepLine[] = [];
  private readonly out: ReturnType<typeof createLogUpdate>;
  private readonly timer: NodeJS.Timeout;
  private frame = 0;
  private stopped = false;
  /** The logger to give the pipeline: its records end up here, not on the terminal. */
  readonly logger: Logger;

  constructor(
    private readonly stream: Terminal = process.stderr,
    level = "info",
  ) {
    this.out = createLogUpdate(new SizedTerminal(stream));
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) this.record(line);
        done();
      },
    });
    this.logger = createLogger({ level, name: "ms run", destination: sink, pretty: false });
    this.timer = setInterval(() => this.render(), 120);
    this.timer.unref();
  }

  private record(line: string): void {
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      return;
    }
    if (!isRecord(r)) return;
    const level = typeof r.level === "number" ? r.level : 30;
    if (level >= 40) {
      this.above(`${LEVEL_NAMES[level] ?? "WARN"}  ${r.step ? `${String(r.step)}: ` : ""}${String(r.msg ?? "").replace(/^\w+: /, "")}`);
      return;
    }
    const step = typeof r.step === "string" ? this.lines.find((l) => l.step === r.step && !l.done) : undefined;
    if (!step) return;
    const status = statusOf(r);
    if (status === undefined) return;
    step.status = status;
    const unit = unitOf(r);
    if (unit) {
      const now = Date.now();
      const same = step.unit && step.unit.kind === unit.kind && step.unit.total === unit.total && unit.done >= step.unit.done;
      // A new kind of count (or one that starts over) starts a new rate.
      step.unit = same && step.unit ? { ...step.unit, done: unit.done, at: now } : { ...unit, first: unit.done, firstAt: now, at: now };
      if (typeof r.etaSeconds === "number") step.unit.eta = r.etaSeconds;
    }
    this.render();
  }

  /** Prints a line above the live lines (they are redrawn below it). */
  above(text: string): void {
    if (this.stopped) {
      this.stream.write(`${terminalSafe(text)}\n`);
      return;
    }
    this.out.clear();
    this.stream.write(`${terminalSafe(text)}\n`);
    this.render();
  }

  stepStarted(step: string): void {
    this.lines.push({ step, started: Date.now(), status: "checking the cache" });
    this.render();
  }

  /** `source` "remote": the result was downloaded from the shared remote cache. */
  stepFinished(step: string, cached: boolean, secondsTaken: number, summary: string, source?: string): void {
    const line = this.lines.find((l) => l.step === step && !l.done);
    if (line)
      line.done = `${source === "remote" ? "remote  " : cached ? "cached  " : "computed"}  ${secondsTaken.toFixed(2).padStart(6)} s  ${summary}`;
    this.render();
  }

  stepFailed(step: string, message: string): void {
    const line = this.lines.find((l) => l.step === step && !l.done);
    if (line) line.done = `failed: ${message}`;
    this.render();
  }

  status(step: string, text: string): void {
    const line = this.lines.find((l) => l.step === step && !l.done);
    if (line) line.status = text;
    this.render();
  }

  private render(): void {
    if (this.stopped) return;
    this.frame = (this.frame + 1) % SPINNER.length;
    const width = Math.max(40, (this.stream.columns || 100) - 1);
    const now = Date.now();
    const text = this.lines
      .map((l) => {
        if (l.done) return `${l.done.startsWith("failed") ? "✖" : "✔"} ${l.step.padEnd(9)}${l.done}`;
        const elapsed = now - l.started;
        const left = l.unit ? etaMs(l.unit, now) : undefined;
        const eta = left === undefined ? "" : `, ETA ${seconds(left)}`;
        return `${SPINNER[this.frame]} ${l.step.padEnd(9)}${`${seconds(elapsed)}${eta}`.padEnd(22)} ${l.status}`;
      })
      .map((s) => (s.length > width ? `${s.slice(0, width - 1)}…` : s))
      .join("\n");
    // The lines hold steps' log text (others' titles, records): shown, never obeyed.
    this.out(terminalSafe(text));
  }

  /** Leaves the final lines on the terminal. */
  stop(): void {
    if (this.stopped) return;
    this.render();
    this.stopped = true;
    clearInterval(this.timer);
    this.out.done();
  }
}
