/**
 * `ms run`: its flags (the step parameters' table in its help comes from the step definitions),
 * the checks of flags that go together, Ctrl-C through @ms/contracts' `abortOnSignals`, the live
 * progress on a terminal, and `runPipeline`'s report printed as the summary.
 */
import {
  BadParameterError,
  abortOnSignals,
  buildCatalog,
  describeParam,
  formatTable,
  parseAssignments,
  type CliContext,
  type CliSpec,
} from "@ms/contracts";
import { parseRemoteMode } from "@ms/cache-s3";
import { DEFAULT_DATASET, DEFAULT_EXPERIMENT, defaultCacheDir, runPipeline, type PipelineEvents } from "../pipeline.js";
import { PIPELINE, STEPS } from "../steps.js";
import { checkRegistrationFlags, prepareRegistration, type RegisteredModelReport } from "../register.js";
import { formatReport, headlineOf } from "../summary.js";
import { SHARED_OPTIONS, remoteCacheUrl } from "./options.js";

const RUN_OPTIONS = {
  param: {
    type: "string",
    short: "P",
    multiple: true,
    value: "KEY=VALUE",
    description: "a step parameter, repeatable (e.g. -P als_max_iter=20 -P max_row_limit=-1); list below",
  },
  dataset: {
    type: "string",
    value: "NAME",
    description: `ml-latest-small, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m or synthetic (default ${DEFAULT_DATASET})`,
  },
  "ratings-csv": { type: "string", value: "PATH", description: "use this ratings file (csv, dat or u.data format) instead of a dataset" },
  "test-ratings": {
    type: "string",
    value: "PATH",
    description: "with -P split=file: every rating of this file tests, every rating of the main one trains (e.g. u1.test)",
  },
  url: {
    type: "string",
    value: "URL",
    description: "download this MovieLens-layout zip instead of a dataset (verified against URL.md5 when the server has one)",
  },
  "data-dir": {
    type: "string",
    value: "DIR",
    description: "a local mirror holding <dataset>/ratings.csv (default $MS_DATASETS_DIR; else download)",
  },
  "cache-dir": SHARED_OPTIONS["cache-dir"],
  "no-cache": { type: "boolean", description: "recompute every step (results still replace the cache entries)" },
  force: {
    type: "string",
    multiple: true,
    value: "STEP",
    description: `recompute this step even if cached (${STEPS.join(", ")}); repeatable`,
  },
  "tracking-uri": SHARED_OPTIONS["tracking-uri"],
  experiment: { type: "string", value: "NAME", description: `MLflow experiment (default ${DEFAULT_EXPERIMENT})` },
  "log-artifacts": {
    type: "string",
    value: "WHAT",
    description: "all (default: each computed step's output directory), manifests (small files only) or none",
  },
  "no-report": { type: "boolean", description: "do not write the run report (report.html, logged to the parent run)" },
  "register-model": {
    type: "string",
    value: "NAME",
    description: "register the final model as a new version of this registered model (needs an MLflow server as --tracking-uri)",
  },
  alias: { type: "string", value: "ALIAS", description: "with --register-model: point this alias (e.g. champion) at the new version" },
  "remote-cache": SHARED_OPTIONS["remote-cache"],
  "remote-cache-mode": { type: "string", value: "MODE", description: "read, write or readwrite (default) for --remote-cache" },
  "remote-cache-required": { type: "boolean", description: "a remote cache that cannot be used is an error (exit 6), not one warning" },
  "remote-cache-endpoint": SHARED_OPTIONS["remote-cache-endpoint"],
  "remote-cache-signing-key": SHARED_OPTIONS["remote-cache-signing-key"],
} as const;

type RunValues = Parameters<CliSpec<typeof RUN_OPTIONS>["run"]>[0];

/** The parameter table shown by `ms run --help`, from the step definitions. */
export function paramHelp(): string {
  const catalog = buildCatalog(PIPELINE);
  // A parameter several steps read (split, test_ratings) is one parameter: one line naming its steps.
  const stepsOf = (name: string) => [...new Set(catalog.filter((c) => c.name === name).map((c) => c.step))].join(",");
  const first = catalog.filter((s, i) => catalog.findIndex((c) => c.name === s.name) === i);
  const rows = first.map((s) => [`  ${s.name}`, stepsOf(s.name), s.type, describeParam(s)]);
  const outside = first.filter((s) => s.notInKey);
  return [
    "Parameters (-P KEY=VALUE; every one of them enters the step's cache key unless noted):",
    formatTable(rows),
    "",
    `Not in the cache key, because they cannot change a result: ${outside.map((s) => `${s.name} (${s.notInKey})`).join("; ")}.`,
    "Also outside the key: --cache-dir, --remote-cache*, --tracking-uri, --experiment, --log-artifacts, --log-level.",
  ].join("\n");
}

/**
 * `-P key value` as well as `-P key=value`: a `-P` whose value has no `=` takes the next token as
 * its value (so `-P max_row_limit -1` works).
 */
export function joinParamPairs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i];
    if (
      (t === "-P" || t === "--param") &&
      argv[i + 1] !== undefined &&
      !argv[i + 1].includes("=") &&
      argv[i + 2] !== undefined &&
      !argv[i + 2].startsWith("--")
    ) {
      out.push(t, `${argv[i + 1]}=${argv[i + 2]}`);
      i += 2;
    } else out.push(t);
  }
  return out;
}

/**
 * `--als_rank 4` as `-P als_rank=4` for every parameter name in `names`: \`mlflow run\` passes a
 * `-P` its MLproject entry point does not declare as `--name value`.
 */
export function paramFlags(argv: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z][a-z0-9_]*)(?:=(.*))?$/.exec(argv[i]);
    if (m && names.has(m[1]) && !(m[1] in RUN_OPTIONS) && (m[2] !== undefined || argv[i + 1] !== undefined)) {
      out.push("-P", `${m[1]}=${m[2] ?? argv[++i]}`);
    } else out.push(argv[i]);
  }
  return out;
}

/** `ms run`'s argv as its parser reads it: `--<param> VALUE` and `-P key value` spelled `-P key=value`. */
export function runArgv(argv: readonly string[]): string[] {
  const names = new Set(buildCatalog(PIPELINE).map((p) => p.name));
  return joinParamPairs(paramFlags(argv, names));
}

function parseSteps(list: readonly string[] | undefined, flag: string): string[] {
  return (list ?? []).map((s) => {
    if (!STEPS.includes(s)) throw new BadParameterError(flag, `"${s}" is not a step; steps: ${STEPS.join(", ")}`);
    return s;
  });
}

/** The flags that only mean something together, checked before anything runs. */
function checkFlags(values: RunValues, remoteCache: string | undefined): "all" | "manifests" | "none" {
  if (
    !remoteCache &&
    (values["remote-cache-mode"] !== undefined ||
      values["remote-cache-required"] ||
      values["remote-cache-endpoint"] !== undefined ||
      values["remote-cache-signing-key"] !== undefined)
  ) {
    throw new BadParameterError(
      "--remote-cache",
      "is needed by --remote-cache-mode, --remote-cache-required, --remote-cache-endpoint and --remote-cache-signing-key (or set MS_REMOTE_CACHE)",
    );
  }
  const logArtifacts = values["log-artifacts"] ?? "all";
  if (logArtifacts !== "all" && logArtifacts !== "manifests" && logArtifacts !== "none")
    throw new BadParameterError("--log-artifacts", `"${logArtifacts}" is not all, manifests or none`);
  if (values.dataset && values["ratings-csv"])
    throw new BadParameterError("--ratings-csv", "give either --dataset or --ratings-csv, not both");
  if (values.url && (values.dataset || values["ratings-csv"]))
    throw new BadParameterError("--url", "give one of --url, --dataset and --ratings-csv");
  return logArtifacts;
}

/** The live display on a terminal at the default log level (MS_PROGRESS=0 turns it off). */
function wantsLiveProgress(interactive: boolean, logger: { level: string }): boolean {
  return interactive && logger.level === "info" && process.env.MS_PROGRESS !== "0" && process.env.TERM !== "dumb";
}

/** One line per step, redrawn in place (@ms/progress), when the terminal wants it. */
async function liveProgress(ctx: CliContext) {
  if (!wantsLiveProgress(ctx.interactive, ctx.logger)) return undefined;
  // Loaded only for a terminal: log-update and its dependencies cost ~90 ms of CPU, a third of a cached run.
  const live = new (await import("@ms/progress")).LiveProgress(process.stderr, ctx.logger.level);
  const events: PipelineEvents = {
    stepStarted: (step) => live.stepStarted(step),
    stepFinished: (s) => live.stepFinished(s.step, s.cached, s.seconds, headlineOf(s), s.source),
    stepFailed: (step, error) => live.stepFailed(step, error instanceof Error ? error.message.split("\n")[0] : String(error)),
  };
  return { live, events };
}

/** The summary's line about the registered version. */
function registeredLine(r: RegisteredModelReport, trackingUri: string | undefined): string {
  const where = trackingUri ? ` --tracking-uri ${trackingUri}` : "";
  return `registered: version ${r.version} of model ${r.name}${r.alias ? `, alias ${r.alias}` : ""}; serve it with: ms predict --model-uri ${r.modelUri}${where} --user ID --movie ID`;
}

export function runSpec(epilog?: string): CliSpec<typeof RUN_OPTIONS> {
  return {
    name: "ms run",
    summary: `run ${STEPS.join(" -> ")} with cached steps and MLflow tracking`,
    usage:
      "ms run [--dataset NAME | --ratings-csv PATH | --url URL] [--test-ratings PATH -P split=file] [-P KEY=VALUE]... [--cache-dir DIR] [--json]",
    options: RUN_OPTIONS,
    epilog,
    async run(values, _positionals, ctx) {
      const remoteCache = remoteCacheUrl(values["remote-cache"]);
      const remoteCacheMode = parseRemoteMode(values["remote-cache-mode"]);
      const logArtifacts = checkFlags(values, remoteCache);
      checkRegistrationFlags(values["register-model"], values.alias);
      // A store without a registry (a file store: exit 7) or an unreachable server is said before anything computes.
      const registration =
        values["register-model"] === undefined
          ? undefined
          : await prepareRegistration({
              name: values["register-model"],
              alias: values.alias,
              trackingUri: values["tracking-uri"],
              logger: ctx.logger,
            });
      const display = await liveProgress(ctx);
      const interrupt = abortOnSignals(ctx.logger, "stopping after the current step's next checkpoint");
      try {
        const report = await runPipeline({
          dataset: values.dataset,
          ratingsCsv: values["ratings-csv"],
          testRatings: values["test-ratings"],
          url: values.url,
          dataDir: values["data-dir"],
          params: parseAssignments(values.param ?? []),
          cacheDir: values["cache-dir"] ?? defaultCacheDir(),
          force: parseSteps(values.force, "--force"),
          noCache: values["no-cache"] === true,
          trackingUri: values["tracking-uri"],
          experiment: values.experiment,
          logArtifacts,
          report: values["no-report"] !== true,
          remoteCache,
          remoteCacheMode,
          remoteCacheRequired: values["remote-cache-required"] === true,
          remoteCacheEndpoint: values["remote-cache-endpoint"],
          remoteCacheSigningKey: values["remote-cache-signing-key"],
          logger: display?.live.logger ?? ctx.logger,
          progress: ctx.interactive,
          events: display?.events,
          signal: interrupt.signal,
        });
        display?.live.stop();
        const registeredModel = await registration?.register(report.model, interrupt.signal);
        const text = formatReport(report, { trackingUri: values["tracking-uri"], cacheDir: values["cache-dir"] });
        return registeredModel
          ? { json: { ...report, registeredModel }, text: `${text}\n${registeredLine(registeredModel, values["tracking-uri"])}` }
          : { json: report, text };
      } finally {
        display?.live.stop();
        interrupt.dispose();
      }
    },
  };
}
