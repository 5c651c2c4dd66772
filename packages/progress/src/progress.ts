/**
 * Live progress of `ms run` on a terminal: one line per step, redrawn in place by log-update
 * (what the step is doing, its latest iteration or epoch, loss, rate, elapsed time and an ETA),
 * then the summary. The steps' info records feed the lines instead of scrolling past; warnings
 * and errors are printed above them. Used only when stderr is a terminal: piped, stderr stays
 * JSON lines.
 */
import { Writable } from "node:stream";
import { createLogger, terminalSafe, type Logger } from "@ms/contracts";
import { createLogUpdate } from "log-update";

interface StepLine {
  step: string;
  started: number;
  status: string;
  done?: string;
  /** Epochs, iterations or fits: done / total, for an ETA; `eta`: the seconds left as the step itself estimated them at `at`. */
  unit?: { done: number; total: number; at: number; eta?: number };
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

/** The fields of a step's info record worth a glance, as `k=v`. */
function describe(record: Record<string, unknown>): string {
  const skip = new Set([
    "level",
    "time",
    "name",
    "msg",
    "step",
    "pid",
    "hostname",
    "key",
    "err",
    "file",
    "dir",
    "url",
    "mirror",
    "archive",
    "split",
    "requested",
    "of",
    "etaSeconds",
  ]);
  let head = String(record.msg ?? "").replace(/^\w+: /, "");
  // Iterations, epochs and fits read "iteration 2/10", "epoch 1/3", "fit 2/4", whatever the step's message says.
  for (const unit of ["iteration", "epoch", "fit"]) {
    if (typeof record[unit] === "number" && typeof record.of === "number") {
      head = `${unit} ${String(record[unit])}/${String(record.of)}`;
      skip.add(unit);
    }
  }
  const fields = Object.entries(record)
    .filter(([k, v]) => !skip.has(k) && (typeof v === "number" || (typeof v === "string" && v.length < 24)))
    .slice(0, 5)
    .map(([k, v]) => `${k}=${num(v)}`);
  return [head, ...fields].filter(Boolean).join("  ");
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
    step.status = describe(r);
    // "keras: epoch 2/3" (epoch, of), ALS iterations (iteration, of/maxIter) and fm's fits (fit, of, etaSeconds) give an ETA.
    const done =
      typeof r.epoch === "number" ? r.epoch : typeof r.iteration === "number" ? r.iteration : typeof r.fit === "number" ? r.fit : undefined;
    const total = typeof r.of === "number" ? r.of : typeof r.maxIter === "number" ? r.maxIter : undefined;
    if (done !== undefined && total !== undefined && total > 0)
      step.unit = { done, total, at: Date.now(), ...(typeof r.etaSeconds === "number" ? { eta: r.etaSeconds } : {}) };
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
        let eta = "";
        if (l.unit && l.unit.done > 0 && l.unit.done < l.unit.total) {
          const left =
            l.unit.eta !== undefined ? l.unit.eta * 1000 : ((l.unit.at - l.started) / l.unit.done) * (l.unit.total - l.unit.done);
          eta = `, ETA ${seconds(Math.max(0, left - (now - l.unit.at)))}`;
        }
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
