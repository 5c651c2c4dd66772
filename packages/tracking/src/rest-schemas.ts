/**
 * The answers of MLflow's REST API 2.0 as zod schemas, each turned into our types as it is
 * checked. Protobuf JSON may render int64 as strings and renders non-finite doubles as "NaN",
 * "Infinity" and "-Infinity"; both are accepted. Fields MLflow leaves out when empty default to
 * what an empty value means; a field of the wrong type is an error naming it.
 */
import { z } from "zod";
import { RUN_STATUSES, type Experiment, type Metric, type Run, type RunInfo } from "./types.js";

const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** A protobuf JSON number: a number, a numeric string, or one of the non-finite spellings. */
const Num = z
  .union([z.number(), z.enum(["NaN", "Infinity", "-Infinity"]), z.string().regex(NUMERIC, "expected a number")])
  .transform((v): number => {
    if (typeof v === "number") return v;
    if (v === "NaN") return Number.NaN;
    if (v === "Infinity") return Number.POSITIVE_INFINITY;
    if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
    return Number(v);
  });

/** A number MLflow may leave out (or send empty): null then. */
const OptNum = z
  .union([Num, z.literal(""), z.null()])
  .optional()
  .transform((v) => (v === "" || v === null || v === undefined ? null : v));

const Id = z.union([z.string(), z.number()]).transform(String);
const Stage = z
  .string()
  .optional()
  .transform((v): "active" | "deleted" => (v === "deleted" ? "deleted" : "active"));

export const ExperimentSchema = z
  .object({
    experiment_id: Id,
    name: z.string().default(""),
    artifact_location: z.string().default(""),
    lifecycle_stage: Stage,
    creation_time: OptNum,
    last_update_time: OptNum,
  })
  .transform(
    (e): Experiment => ({
      experimentId: e.experiment_id,
      name: e.name,
      artifactLocation: e.artifact_location,
      lifecycleStage: e.lifecycle_stage,
      creationTime: e.creation_time,
      lastUpdateTime: e.last_update_time,
    }),
  );

export const RunInfoSchema = z
  .object({
    run_id: z.string().optional(),
    run_uuid: z.string().optional(),
    run_name: z.string().default(""),
    experiment_id: Id.default(""),
    user_id: z.string().default(""),
    status: z.enum(RUN_STATUSES).default("RUNNING"),
    start_time: Num.default(0),
    end_time: OptNum,
    artifact_uri: z.string().default(""),
    lifecycle_stage: Stage,
  })
  .transform(
    (i): RunInfo => ({
      runId: i.run_id ?? i.run_uuid ?? "",
      runName: i.run_name,
      experimentId: i.experiment_id,
      userId: i.user_id,
      status: i.status,
      startTime: i.start_time,
      endTime: i.end_time,
      artifactUri: i.artifact_uri,
      lifecycleStage: i.lifecycle_stage,
    }),
  );

export const MetricSchema = z
  .object({ key: z.string(), value: Num, timestamp: Num.default(0), step: Num.default(0) })
  .transform((m): Metric => ({ key: m.key, value: m.value, timestamp: m.timestamp, step: m.step }));

const KeyValues = z
  .array(z.object({ key: z.string(), value: z.string().default("") }))
  .default([])
  .transform((list) => Object.fromEntries(list.map((p) => [p.key, p.value])));

export const RunSchema = z
  .object({
    info: RunInfoSchema,
    data: z
      .object({ params: KeyValues, tags: KeyValues, metrics: z.array(MetricSchema).default([]) })
      .default({ params: {}, tags: {}, metrics: [] }),
  })
  .transform((run): Run => {
    const metrics: Record<string, Metric> = {};
    for (const m of run.data.metrics) metrics[m.key] = m;
    return { info: run.info, params: run.data.params, metrics, tags: run.data.tags };
  });

const PageToken = z
  .string()
  .optional()
  .transform((t) => t || undefined);

/** The answers, one per endpoint (the path after `/api/2.0/mlflow/`). */
export const Answers = {
  experiment: z.object({ experiment: ExperimentSchema }),
  createExperiment: z.object({ experiment_id: Id.refine((id) => id !== "", "expected an experiment id") }),
  searchExperiments: z.object({ experiments: z.array(ExperimentSchema).default([]), next_page_token: PageToken }),
  run: z.object({ run: RunSchema }),
  updateRun: z.object({ run_info: RunInfoSchema }),
  searchRuns: z.object({ runs: z.array(RunSchema).default([]), next_page_token: PageToken }),
  metricHistory: z.object({ metrics: z.array(MetricSchema).default([]), next_page_token: PageToken }),
  listArtifacts: z.object({
    files: z.array(z.object({ path: z.string(), is_dir: z.boolean().default(false), file_size: OptNum })).default([]),
    next_page_token: PageToken,
  }),
  /** Answers whose content we do not use (log-batch, set-tag): any JSON object. */
  empty: z.object({}),
};
