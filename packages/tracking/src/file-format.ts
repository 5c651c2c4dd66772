/**
 * The file formats of MLflow's file store as the local store reads them: a run's or an
 * experiment's `meta.yaml` checked against a valibot schema (a field of the wrong type is a
 * `CorruptArtifactError` naming the file and the field), and the metric files, one
 * "timestamp value step" line per logged value with Python's float spellings.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { checkJson, CorruptArtifactError } from "@ms/contracts";
import * as v from "valibot";
import { isErrno } from "./file-io.js";
import { parseMeta, type Meta } from "./meta-yaml.js";
import { RUN_STATUSES, type Experiment, type Metric, type RunInfo, type RunStatus } from "./types.js";

export const STATUS_CODES: Record<RunStatus, number> = { RUNNING: 1, SCHEDULED: 2, FINISHED: 3, FAILED: 4, KILLED: 5 };
const STATUS_NAMES = new Map<number, RunStatus>(RUN_STATUSES.map((s) => [STATUS_CODES[s], s]));

/** Reads `<dir>/meta.yaml`; undefined when there is none. Unparseable YAML is a `CorruptArtifactError`. */
export async function readMeta(dir: string): Promise<Meta | undefined> {
  const file = path.join(dir, "meta.yaml");
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
  try {
    return parseMeta(text, file);
  } catch (error) {
    throw new CorruptArtifactError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** A YAML scalar that holds text (PyYAML leaves a numeric-looking id unquoted at times); undefined when absent or null. */
const Text = v.pipe(
  v.optional(v.union([v.string(), v.number(), v.null()])),
  v.transform((text) => (text === null || text === undefined ? undefined : String(text))),
);
/** A YAML integer, also when quoted; null when absent or null. */
const Int = v.pipe(
  v.optional(v.union([v.pipe(v.number(), v.integer()), v.pipe(v.string(), v.regex(/^\d+$/, "expected an integer")), v.null()]), null),
  v.transform((int) => (int === null ? null : Number(int))),
);
const Stage = v.pipe(v.optional(v.union([v.literal("active"), v.literal("deleted")]), "active"));

const ExperimentMeta = v.object({
  experiment_id: Text,
  name: Text,
  artifact_location: Text,
  lifecycle_stage: Stage,
  creation_time: Int,
  last_update_time: Int,
});

const RunMeta = v.object({
  run_id: Text,
  run_uuid: Text,
  run_name: Text,
  experiment_id: Text,
  user_id: Text,
  // MLflow always writes a run's status: a meta.yaml without one was cut short, not a RUNNING run.
  status: v.pipe(
    v.union(
      [v.pipe(v.number(), v.integer()), v.pipe(v.string(), v.regex(/^\d+$/, "expected an integer"))],
      "a run status code (1 to 5) is required",
    ),
    v.transform(Number),
    v.check((code) => STATUS_NAMES.has(code), "expected a run status code (1 to 5)"),
  ),
  start_time: Int,
  end_time: Int,
  artifact_uri: Text,
  lifecycle_stage: Stage,
});

/** An experiment's meta.yaml (at `<dir>/meta.yaml`) as an `Experiment`. */
export function toExperiment(meta: Meta, dir: string): Experiment {
  const m = checkJson(meta, ExperimentMeta, path.join(dir, "meta.yaml"));
  return {
    experimentId: m.experiment_id ?? path.basename(dir),
    name: m.name ?? "",
    artifactLocation: m.artifact_location ?? pathToFileURL(dir).href,
    lifecycleStage: m.lifecycle_stage,
    creationTime: m.creation_time,
    lastUpdateTime: m.last_update_time,
  };
}

/** A run's meta.yaml (at `<dir>/meta.yaml`) as a `RunInfo`. */
export function toRunInfo(meta: Meta, dir: string): RunInfo {
  const m = checkJson(meta, RunMeta, path.join(dir, "meta.yaml"));
  return {
    runId: m.run_id ?? m.run_uuid ?? "",
    runName: m.run_name ?? "",
    experimentId: m.experiment_id ?? "",
    userId: m.user_id ?? "",
    status: STATUS_NAMES.get(m.status) ?? "RUNNING",
    startTime: m.start_time ?? 0,
    endTime: m.end_time,
    artifactUri: m.artifact_uri ?? "",
    lifecycleStage: m.lifecycle_stage,
  };
}

/** Python's float() spellings for the values MLflow writes (`nan`, `inf`, `-inf`). */
export function parseMetricValue(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === "nan" || t === "+nan" || t === "-nan") return Number.NaN;
  if (t === "inf" || t === "+inf" || t === "infinity" || t === "+infinity") return Number.POSITIVE_INFINITY;
  if (t === "-inf" || t === "-infinity") return Number.NEGATIVE_INFINITY;
  const n = Number(t);
  if (t === "" || Number.isNaN(n)) throw new Error(`not a number: ${JSON.stringify(text)}`);
  return n;
}

/** Writes a value as Python's str(float) would for the non-finite cases, which MLflow reads back. */
export function formatMetricValue(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Number.POSITIVE_INFINITY) return "inf";
  if (value === Number.NEGATIVE_INFINITY) return "-inf";
  return String(value);
}

/** One metric line as appended by `logMetrics`. */
export function formatMetricLine(m: { timestamp: number; value: number; step: number }): string {
  return `${m.timestamp} ${formatMetricValue(m.value)} ${m.step}\n`;
}

/** Every value logged to one metric; a damaged line is a `CorruptArtifactError` naming file and line. */
export async function readMetricFile(file: string, key: string): Promise<Metric[]> {
  const text = await fs.readFile(file, "utf8");
  const out: Metric[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const parts = line.trim().split(" ");
    if (parts.length !== 2 && parts.length !== 3 && parts.length !== 5)
      throw new CorruptArtifactError(`${file}:${i + 1}: expected "timestamp value step", got ${JSON.stringify(line)}`);
    try {
      out.push({
        key,
        timestamp: Number.parseInt(parts[0], 10),
        value: parseMetricValue(parts[1]),
        step: parts.length === 3 ? Number.parseInt(parts[2], 10) : 0,
      });
    } catch (error) {
      throw new CorruptArtifactError(`${file}:${i + 1}: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  return out;
}

/** The value `read` gives, or undefined when what it reads is damaged. */
export function tryOrUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if (error instanceof CorruptArtifactError) return undefined;
    throw error;
  }
}
