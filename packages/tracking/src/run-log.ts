/**
 * How a pipeline run appears in MLflow: one parent run and one nested child run per step, with
 * MLflow's system tags, the step's params, its metrics (forwarded from the step's metrics sink
 * with their steps) and its output directory as artifacts. Talks only to the `Tracker` interface;
 * what a child run is named (the step's MLproject entry point) is the step definition's.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { BadParameterError, MissingArtifactError, MsError, type Logger, type MetricsSink } from "@ms/contracts";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG } from "./tags.js";
import type { MetricInput, ParamValue, Run, TerminalStatus, Tracker } from "./types.js";

/**
 * Gives an experiment the run writes into MLflow 3's `mlflow.experimentKind` when it has none
 * (one created by MLflow, e.g. its Default, or by an older ms), so MLflow's UI opens it on its runs.
 */
async function markExperimentKind(tracker: Tracker, experimentId: string, logger: Logger): Promise<void> {
  if (await tracker.ensureExperimentTag(experimentId, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND))
    logger.debug({ experimentId }, `experiment ${experimentId}: tagged ${EXPERIMENT_KIND_TAG}=${EXPERIMENT_KIND}`);
}

/** Reads the checked-out commit from `.git` without spawning git; undefined outside a checkout. */
export async function gitCommit(start: string): Promise<string | undefined> {
  let dir = path.resolve(start);
  for (;;) {
    const dotGit = path.join(dir, ".git");
    const st = await fs.stat(dotGit).catch(() => undefined);
    if (st) {
      let gitDir = dotGit;
      if (st.isFile()) {
        const m = /^gitdir:\s*(.+)$/m.exec(await fs.readFile(dotGit, "utf8").catch(() => ""));
        if (!m) return undefined;
        gitDir = path.resolve(dir, m[1].trim());
      }
      return readHead(gitDir);
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

async function readHead(gitDir: string): Promise<string | undefined> {
  const head = (await fs.readFile(path.join(gitDir, "HEAD"), "utf8").catch(() => "")).trim();
  if (/^[0-9a-f]{40,64}$/.test(head)) return head;
  const ref = /^ref:\s*(.+)$/.exec(head)?.[1];
  if (!ref) return undefined;
  // Worktrees keep refs in the common dir.
  const common = (await fs.readFile(path.join(gitDir, "commondir"), "utf8").catch(() => "")).trim();
  const dirs = [gitDir, ...(common ? [path.resolve(gitDir, common)] : [])];
  for (const d of dirs) {
    const loose = (await fs.readFile(path.join(d, ref), "utf8").catch(() => "")).trim();
    if (/^[0-9a-f]{40,64}$/.test(loose)) return loose;
    const packed = await fs.readFile(path.join(d, "packed-refs"), "utf8").catch(() => "");
    for (const line of packed.split("\n")) {
      const [sha, name] = line.split(" ");
      if (name === ref && /^[0-9a-f]{40,64}$/.test(sha)) return sha;
    }
  }
  return undefined;
}

/** A metrics sink that buffers a step's calls (steps call it synchronously) for one batched upload. */
export class BufferedMetrics implements MetricsSink {
  private buffer: MetricInput[] = [];
  readonly latest: Record<string, number> = {};
  metric(key: string, value: number, step?: number): void {
    this.buffer.push({ key, value, step: step ?? 0, timestamp: Date.now() });
    this.latest[key] = value;
  }
  /** The buffered calls, left in the buffer. */
  peek(): MetricInput[] {
    return [...this.buffer];
  }
  take(): MetricInput[] {
    const out = this.buffer;
    this.buffer = [];
    return out;
  }
}

export type LogArtifacts = "all" | "manifests" | "none";

export class RunLog {
  constructor(
    private readonly tracker: Tracker,
    private readonly experimentId: string,
    private readonly logger: Logger,
  ) {}

  static async open(tracker: Tracker, experiment: string, logger: Logger): Promise<RunLog> {
    const exp = await tracker.getOrCreateExperiment(experiment);
    await markExperimentKind(tracker, exp.experimentId, logger);
    return new RunLog(tracker, exp.experimentId, logger);
  }

  /** Logs into the experiment of an existing run (MLflow's `MLFLOW_RUN_ID`); the run must be active. */
  /** `refuse` may throw to turn the run down (e.g. it belongs to another live process). */
  static async forRun(tracker: Tracker, runId: string, logger: Logger, refuse?: (run: Run) => void): Promise<RunLog> {
    const run = await tracker.getRun(runId).catch((error: unknown) => {
      throw error instanceof MsError && !(error instanceof MissingArtifactError)
        ? error
        : new BadParameterError(
            "MLFLOW_RUN_ID",
            `run ${runId} does not exist in ${tracker.uri}: ${error instanceof Error ? error.message : String(error)}`,
          );
    });
    if (run.info.status !== "RUNNING")
      throw new BadParameterError(
        "MLFLOW_RUN_ID",
        `run ${runId} in ${tracker.uri} is ${run.info.status}, not RUNNING; unset MLFLOW_RUN_ID to start a new run`,
      );
    refuse?.(run);
    await markExperimentKind(tracker, run.info.experimentId, logger);
    return new RunLog(tracker, run.info.experimentId, logger);
  }

  /** Logs into an experiment given by id (MLflow's `MLFLOW_EXPERIMENT_ID`). */
  static async forExperiment(tracker: Tracker, experimentId: string, logger: Logger): Promise<RunLog> {
    const exp = await tracker.getExperiment(experimentId).catch((error: unknown) => {
      throw error instanceof MissingArtifactError
        ? new BadParameterError("MLFLOW_EXPERIMENT_ID", `experiment ${experimentId} does not exist in ${tracker.uri}`)
        : error;
    });
    await markExperimentKind(tracker, exp.experimentId, logger);
    return new RunLog(tracker, exp.experimentId, logger);
  }

  /** The experiment the runs go to. */
  get experiment(): string {
    return this.experimentId;
  }

  async start(runName: string, tags: Record<string, string>, parentRunId?: string): Promise<string> {
    const info = await this.tracker.startRun({ experimentId: this.experimentId, runName, tags, ...(parentRunId ? { parentRunId } : {}) });
    return info.runId;
  }

  async params(runId: string, params: Record<string, ParamValue>): Promise<void> {
    if (Object.keys(params).length) await this.tracker.logParams(runId, params);
  }

  /**
   * Logs the params a run does not hold yet (MLflow logged an adopted run's own `-P` values as
   * text); a param it holds with another value is kept and reported, never an error.
   */
  async newParams(runId: string, params: Record<string, ParamValue>): Promise<void> {
    const held = (await this.tracker.getRun(runId)).params;
    const fresh: Record<string, ParamValue> = {};
    for (const [k, v] of Object.entries(params)) {
      if (!(k in held)) fresh[k] = v;
      else if (held[k] !== String(v) && Number(held[k]) !== Number(v))
        this.logger.warn({ param: k, run: held[k], resolved: v }, `param ${k}: the run holds "${held[k]}", ms resolved ${String(v)}`);
    }
    await this.params(runId, fresh);
  }

  async tags(runId: string, tags: Record<string, string>): Promise<void> {
    await this.tracker.setTags(runId, tags);
  }

  async metrics(runId: string, metrics: readonly MetricInput[]): Promise<void> {
    for (let i = 0; i < metrics.length; i += 1000) await this.tracker.logMetrics(runId, metrics.slice(i, i + 1000));
  }

  /** Logs an entry directory, or just its small files. */
  async artifacts(runId: string, dir: string, mode: LogArtifacts, small: readonly string[]): Promise<void> {
    if (mode === "none") return;
    if (mode === "all") {
      await this.tracker.logArtifacts(runId, dir);
      return;
    }
    for (const file of small) {
      if (
        await fs.stat(file).then(
          (s) => s.isFile(),
          () => false,
        )
      )
        await this.tracker.logArtifacts(runId, file);
    }
  }

  async end(runId: string, status: TerminalStatus): Promise<void> {
    await this.tracker.endRun(runId, status);
  }

  /** Ends a run after a failure without letting a tracking error hide the original one. */
  async endQuietly(runId: string, status: TerminalStatus): Promise<void> {
    await this.tracker.endRun(runId, status).catch((error: unknown) => this.logger.warn({ err: error, runId }, "could not end the run"));
  }
}
