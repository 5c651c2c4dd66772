/**
 * The answers of MLflow's REST API 2.0 as valibot schemas, each turned into our types as it is
 * checked. Protobuf JSON may render int64 as strings and renders non-finite doubles as "NaN",
 * "Infinity" and "-Infinity"; both are accepted. Fields MLflow leaves out when empty default to
 * what an empty value means (a default is given to `v.optional` even where a transform maps it:
 * valibot runs no schema for a missing key without one); a field of the wrong type is an error naming it.
 */
import * as v from "valibot";
import { RUN_STATUSES, type Experiment, type Metric, type Run, type RunInfo } from "./types.js";

const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** A protobuf JSON number: a number, a numeric string, or one of the non-finite spellings. */
const Num = v.pipe(
  v.union([v.number(), v.picklist(["NaN", "Infinity", "-Infinity"]), v.pipe(v.string(), v.regex(NUMERIC, "expected a number"))]),
  v.transform((value): number => {
    if (typeof value === "number") return value;
    if (value === "NaN") return Number.NaN;
    if (value === "Infinity") return Number.POSITIVE_INFINITY;
    if (value === "-Infinity") return Number.NEGATIVE_INFINITY;
    return Number(value);
  }),
);

/** A number MLflow may leave out (or send empty): null then. */
const OptNum = v.pipe(
  v.optional(v.union([Num, v.literal(""), v.null()]), null),
  v.transform((value) => (value === "" || value === null ? null : value)),
);

const Id = v.pipe(v.union([v.string(), v.number()]), v.transform(String));
const Stage = v.pipe(
  v.optional(v.string(), "active"),
  v.transform((stage): "active" | "deleted" => (stage === "deleted" ? "deleted" : "active")),
);

export const ExperimentSchema = v.pipe(
  v.object({
    experiment_id: Id,
    name: v.optional(v.string(), ""),
    artifact_location: v.optional(v.string(), ""),
    lifecycle_stage: Stage,
    creation_time: OptNum,
    last_update_time: OptNum,
  }),
  v.transform(
    (e): Experiment => ({
      experimentId: e.experiment_id,
      name: e.name,
      artifactLocation: e.artifact_location,
      lifecycleStage: e.lifecycle_stage,
      creationTime: e.creation_time,
      lastUpdateTime: e.last_update_time,
    }),
  ),
);

export const RunInfoSchema = v.pipe(
  v.object({
    run_id: v.optional(v.string()),
    run_uuid: v.optional(v.string()),
    run_name: v.optional(v.string(), ""),
    experiment_id: v.optional(Id, ""),
    user_id: v.optional(v.string(), ""),
    status: v.optional(v.picklist(RUN_STATUSES), "RUNNING"),
    start_time: v.optional(Num, 0),
    end_time: OptNum,
    artifact_uri: v.optional(v.string(), ""),
    lifecycle_stage: Stage,
  }),
  v.transform(
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
  ),
);

export const MetricSchema = v.pipe(
  v.object({ key: v.string(), value: Num, timestamp: v.optional(Num, 0), step: v.optional(Num, 0) }),
  v.transform((m): Metric => ({ key: m.key, value: m.value, timestamp: m.timestamp, step: m.step })),
);

const KeyValues = v.pipe(
  v.optional(v.array(v.object({ key: v.string(), value: v.optional(v.string(), "") })), []),
  v.transform((list) => Object.fromEntries(list.map((p) => [p.key, p.value]))),
);

export const RunSchema = v.pipe(
  v.object({
    info: RunInfoSchema,
    data: v.optional(v.object({ params: KeyValues, tags: KeyValues, metrics: v.optional(v.array(MetricSchema), []) }), {}),
  }),
  v.transform((run): Run => {
    const metrics: Record<string, Metric> = {};
    for (const m of run.data.metrics) metrics[m.key] = m;
    return { info: run.info, params: run.data.params, metrics, tags: run.data.tags };
  }),
);

const PageToken = v.pipe(
  v.optional(v.string()),
  v.transform((t) => t || undefined),
);

/** The answers, one per endpoint (the path after `/api/2.0/mlflow/`). */
export const Answers = {
  experiment: v.object({ experiment: ExperimentSchema }),
  createExperiment: v.object({
    experiment_id: v.pipe(
      Id,
      v.check((id) => id !== "", "expected an experiment id"),
    ),
  }),
  searchExperiments: v.object({ experiments: v.optional(v.array(ExperimentSchema), []), next_page_token: PageToken }),
  run: v.object({ run: RunSchema }),
  updateRun: v.object({ run_info: RunInfoSchema }),
  searchRuns: v.object({ runs: v.optional(v.array(RunSchema), []), next_page_token: PageToken }),
  metricHistory: v.object({ metrics: v.optional(v.array(MetricSchema), []), next_page_token: PageToken }),
  listArtifacts: v.object({
    files: v.optional(v.array(v.object({ path: v.string(), is_dir: v.optional(v.boolean(), false), file_size: OptNum })), []),
    next_page_token: PageToken,
  }),
  /** An experiment's tags (experiments/get), for a tag set only when absent. */
  experimentTags: v.object({
    experiment: v.object({ tags: v.optional(v.array(v.object({ key: v.string(), value: v.optional(v.string(), "") })), []) }),
  }),
  /** Answers whose content we do not use (log-batch, set-tag): any JSON object. */
  empty: v.object({}),
};
