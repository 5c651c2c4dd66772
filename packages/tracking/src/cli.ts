/**
 * `ms-runs ls | show | compare`: reading runs from either store. Exported as `runsCommand` so
 * that the driver's `ms runs ...` delegates here instead of duplicating it.
 */
import { BadParameterError, formatTable, parseIntegerFlag, runCli, type CliResult } from "@ms/contracts";
import { createTracker } from "./tracker.js";
import type { Experiment, Metric, Run, Tracker } from "./types.js";
import { TAGS } from "./tags.js";

export interface RunsCommandOptions {
  /** The program name shown in help and errors (default `ms-runs`; the driver passes `ms runs`). */
  name?: string;
}

const OPTIONS = {
  "tracking-uri": {
    type: "string",
    value: "URI",
    description: "a path, file: URI or http(s):// MLflow server (default: $MLFLOW_TRACKING_URI or ./mlruns)",
  },
  experiment: { type: "string", value: "NAME", description: "ls: only runs of this experiment (default: all experiments)" },
  "max-results": { type: "string", value: "N", description: "ls: at most N runs, newest first (default 50)" },
} as const;

/** JSON has no NaN or Infinity: spell them as MLflow's REST API does. */
function jsonNumber(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

function metricJson(m: Metric) {
  return { value: jsonNumber(m.value), step: m.step, timestamp: m.timestamp };
}

function runJson(run: Run) {
  return {
    ...run.info,
    parentRunId: run.tags[TAGS.parent] ?? null,
    params: run.params,
    metrics: Object.fromEntries(Object.entries(run.metrics).map(([k, m]) => [k, metricJson(m)])),
    tags: run.tags,
  };
}

function iso(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function show(v: number): string {
  return Number.isFinite(v) ? String(v) : String(jsonNumber(v));
}

async function ls(tracker: Tracker, experimentName: string | undefined, max: number): Promise<CliResult> {
  let experiments: Experiment[];
  if (experimentName !== undefined) {
    const e = await tracker.getExperimentByName(experimentName);
    if (!e) throw new BadParameterError("--experiment", `no experiment named ${JSON.stringify(experimentName)} in ${tracker.uri}`);
    experiments = [e];
  } else {
    experiments = await tracker.listExperiments();
  }
  const names = new Map(experiments.map((e) => [e.experimentId, e.name]));
  const runs: Run[] = [];
  let pageToken: string | undefined;
  if (experiments.length > 0) {
    do {
      const page = await tracker.searchRuns({
        experimentIds: experiments.map((e) => e.experimentId),
        maxResults: Math.min(1000, max - runs.length),
        pageToken,
      });
      runs.push(...page.runs);
      pageToken = page.nextPageToken;
    } while (pageToken && runs.length < max);
  }
  const rows = runs.map((r) => [
    r.info.runId,
    names.get(r.info.experimentId) ?? r.info.experimentId,
    r.info.runName,
    r.info.status,
    iso(r.info.startTime),
    r.tags[TAGS.parent] ?? "",
  ]);
  return {
    json: { trackingUri: tracker.uri, runs: runs.map(runJson) },
    text: runs.length ? formatTable(rows, ["RUN ID", "EXPERIMENT", "NAME", "STATUS", "STARTED", "PARENT"]) : `no runs in ${tracker.uri}`,
  };
}

async function showRun(tracker: Tracker, runId: string): Promise<CliResult> {
  const run = await tracker.getRun(runId);
  const artifacts = await tracker.listArtifacts(runId);
  const i = run.info;
  const lines = [
    `run        ${i.runId}`,
    `name       ${i.runName}`,
    `experiment ${i.experimentId}`,
    `status     ${i.status}`,
    `started    ${iso(i.startTime)}`,
    `ended      ${iso(i.endTime)}`,
    `parent     ${run.tags[TAGS.parent] ?? "-"}`,
    `artifacts  ${i.artifactUri}`,
    "",
    "params:",
    ...Object.keys(run.params)
      .sort()
      .map((k) => `  ${k} = ${run.params[k]}`),
    "metrics (latest):",
    ...Object.keys(run.metrics)
      .sort()
      .map((k) => `  ${k} = ${show(run.metrics[k].value)} (step ${run.metrics[k].step})`),
    "tags:",
    ...Object.keys(run.tags)
      .sort()
      .map((k) => `  ${k} = ${run.tags[k]}`),
    "artifact files:",
    ...artifacts.map((a) => `  ${a.path}${a.fileSize !== undefined ? ` (${a.fileSize} bytes)` : ""}`),
  ];
  return { json: { run: runJson(run), artifacts }, text: lines.join("\n") };
}

async function compare(tracker: Tracker, runIds: string[]): Promise<CliResult> {
  if (runIds.length === 0) throw new BadParameterError("RUN_ID", "compare needs at least one run id");
  const runs = await Promise.all(runIds.map((id) => tracker.getRun(id)));
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const header = ["", ...runs.map((r) => `${r.info.runName} (${r.info.runId.slice(0, 8)})`)];
  const rows = [
    ["status", ...runs.map((r) => r.info.status)],
    ...paramKeys.map((k) => [`param ${k}`, ...runs.map((r) => r.params[k] ?? "-")]),
    ...metricKeys.map((k) => [`metric ${k}`, ...runs.map((r) => (r.metrics[k] ? show(r.metrics[k].value) : "-"))]),
  ];
  return {
    json: {
      runs: runs.map((r) => ({ runId: r.info.runId, runName: r.info.runName, status: r.info.status })),
      params: Object.fromEntries(paramKeys.map((k) => [k, runs.map((r) => r.params[k] ?? null)])),
      metrics: Object.fromEntries(metricKeys.map((k) => [k, runs.map((r) => (r.metrics[k] ? jsonNumber(r.metrics[k].value) : null))])),
    },
    text: formatTable(rows, header),
  };
}

/** Runs `ls`, `show` or `compare` with argv (without the program name); resolves to the exit code. */
export function runsCommand(argv: readonly string[], options: RunsCommandOptions = {}): Promise<number> {
  const name = options.name ?? "ms-runs";
  return runCli(
    {
      name,
      summary: "list, show and compare tracked runs (MLflow file store or MLflow server)",
      usage: `${name} ls [--experiment NAME] | show RUN_ID | compare RUN_ID... [--tracking-uri URI] [--json]`,
      options: OPTIONS,
      allowPositionals: true,
      epilog:
        "Commands:\n  ls              runs, newest first\n  show RUN_ID     one run: params, latest metrics, tags, artifact files\n  compare RUN_ID  params and latest metrics of several runs side by side",
      async run(values, positionals, ctx) {
        const [command, ...rest] = positionals;
        const tracker = createTracker(values["tracking-uri"], { logger: ctx.logger });
        ctx.logger.debug({ trackingUri: tracker.uri, command }, "runs command");
        switch (command) {
          case "ls":
            if (rest.length) throw new BadParameterError("ls", `takes no positional arguments, got ${rest.join(" ")}`);
            {
              const max = parseIntegerFlag("--max-results", values["max-results"], 50);
              if (max < 1) throw new BadParameterError("--max-results", `must be at least 1, got ${max}`);
              return ls(tracker, values.experiment, max);
            }
          case "show":
            if (rest.length !== 1) throw new BadParameterError("show", "takes exactly one RUN_ID");
            return showRun(tracker, rest[0]);
          case "compare":
            return compare(tracker, rest);
          case undefined:
            throw new BadParameterError("command", `missing; one of ls, show, compare (see '${name} --help')`);
          default:
            throw new BadParameterError("command", `unknown command ${JSON.stringify(command)}; one of ls, show, compare`);
        }
      },
    },
    argv,
  );
}
