/**
 * The `ms` command line: `ms run`, `ms cache ls|verify|gc|push|pull` (both through `runCli`) and `ms runs`
 * (delegated to @ms/tracking's `runsCommand`). Only flag parsing and printing live here.
 */
import {
  BadParameterError,
  CorruptArtifactError,
  EXIT_CODES,
  InterruptedError,
  formatTable,
  parseIntegerFlag,
  runCli,
  type CliSpec,
  describeParam,
} from "@ms/contracts";
import { resolveTrackingUri, runsCommand } from "@ms/tracking";
import { MODEL_KINDS, predictRatings, readPairs, recommend, type ModelKind } from "@ms/serve";
import { CacheStore, gcCache, listCache, parseAge, pullEntries, pushEntries, verifyCache } from "@ms/cache";
import { S3RemoteStore, parseRemoteMode } from "@ms/cache-s3";
import { buildCatalog, parseAssignments } from "./params.js";
import { CLEANERS, PIPELINE, STEPS } from "./steps.js";
import { DEFAULT_DATASET, DEFAULT_EXPERIMENT, defaultCacheDir, runPipeline, type PipelineReport } from "./pipeline.js";

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
  "cache-dir": {
    type: "string",
    value: "DIR",
    description: "the step cache (default $MS_CACHE_DIR, else $XDG_CACHE_HOME/ms or ~/.cache/ms)",
  },
  "no-cache": { type: "boolean", description: "recompute every step (results still replace the cache entries)" },
  force: {
    type: "string",
    multiple: true,
    value: "STEP",
    description: "recompute this step even if cached (download, etl, als, keras); repeatable",
  },
  "tracking-uri": {
    type: "string",
    value: "URI",
    description: "MLflow store: a path, file: URI or http(s):// server (default $MLFLOW_TRACKING_URI or ./mlruns)",
  },
  experiment: { type: "string", value: "NAME", description: `MLflow experiment (default ${DEFAULT_EXPERIMENT})` },
  "log-artifacts": {
    type: "string",
    value: "WHAT",
    description: "all (default: each computed step's output directory), manifests (small files only) or none",
  },
  "no-report": { type: "boolean", description: "do not write the run report (report.html, logged to the parent run)" },
  "remote-cache": {
    type: "string",
    value: "URL",
    description: "a shared step cache s3://BUCKET/PREFIX (default $MS_REMOTE_CACHE); credentials and region from the AWS chain",
  },
  "remote-cache-mode": { type: "string", value: "MODE", description: "read, write or readwrite (default) for --remote-cache" },
  "remote-cache-required": { type: "boolean", description: "a remote cache that cannot be used is an error (exit 6), not one warning" },
  "remote-cache-endpoint": {
    type: "string",
    value: "URL",
    description: "an S3-compatible server (default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL); path-style addressing",
  },
} as const;

const MODEL_OPTIONS = {
  user: { type: "string", value: "ID", description: "the user id (as in the ratings file)" },
  model: {
    type: "string",
    value: "KIND",
    description: "keras (default: the run's final model; its ALS model when the keras one cannot score new pairs) or als",
  },
  run: { type: "string", value: "RUN_ID", description: "the ms run to use (default: the latest finished one)" },
  experiment: { type: "string", value: "NAME", description: "look for the latest run only in this experiment" },
  "tracking-uri": RUN_OPTIONS["tracking-uri"],
  "cache-dir": RUN_OPTIONS["cache-dir"],
} as const;

const RECOMMEND_OPTIONS = {
  ...MODEL_OPTIONS,
  top: { type: "string", value: "N", description: "how many movies (default 10)" },
} as const;

const PREDICT_OPTIONS = {
  ...MODEL_OPTIONS,
  movie: { type: "string", value: "ID", description: "the movie id (with --user)" },
  pairs: { type: "string", value: "FILE", description: "a file of userId,movieId lines instead of --user/--movie" },
} as const;

const CACHE_OPTIONS = {
  "cache-dir": RUN_OPTIONS["cache-dir"],
  step: { type: "string", value: "STEP", description: "ls: only entries of this step" },
  remove: { type: "boolean", description: "verify: delete damaged entries (the next run recomputes them)" },
  "older-than": { type: "string", value: "AGE", description: "gc: remove entries not used for AGE (30d, 12h, 90m, 0)" },
  keep: { type: "string", value: "N", description: "gc: keep at most N entries per step, most recently used first" },
  "dry-run": { type: "boolean", description: "gc: only report what would be removed" },
  remote: { type: "boolean", description: "ls: the entries of the remote cache instead" },
  "remote-cache": RUN_OPTIONS["remote-cache"],
  "remote-cache-endpoint": RUN_OPTIONS["remote-cache-endpoint"],
} as const;

/** The parameter table shown by `ms run --help`, from the step definitions. */
export function paramHelp(): string {
  const catalog = buildCatalog(PIPELINE);
  const rows = catalog.map((s) => [`  ${s.name}`, s.step, s.type, describeParam(s)]);
  const outside = catalog.filter((s) => s.notInKey);
  return [
    "Parameters (-P KEY=VALUE; every one of them enters the step's cache key unless noted):",
    formatTable(rows),
    "",
    `Not in the cache key, because they cannot change a result: ${outside.map((s) => `${s.name} (${s.notInKey})`).join("; ")}.`,
    "Also outside the key: --cache-dir, --remote-cache*, --tracking-uri, --experiment, --log-artifacts, --log-level.",
  ].join("\n");
}

function mainMetrics(step: string, m: Record<string, unknown>, outputs: Record<string, unknown>): string {
  const pick = (keys: string[]) =>
    keys
      .filter((k) => typeof m[k] === "number")
      .map((k) => `${k}=${Number.isInteger(m[k]) ? String(m[k]) : Number((m[k] as number).toPrecision(4))}`)
      .join(" ");
  switch (step) {
    case "download": {
      const r = (outputs.ratings ?? {}) as { source?: string };
      return `source=${r.source ?? "?"} ${pick(["bytes"])}`;
    }
    case "etl":
      return pick(["rows", "duplicates_dropped"]);
    case "als":
      return pick(["train_rmse", "test_rmse"]);
    case "keras":
      return pick(["test_rmse", "epochs_run"]);
    default:
      return pick(["test_rmse"]);
  }
}

/** Where a run's results are and what to run next, under the summary table. */
export interface ReportContext {
  trackingUri?: string;
  cacheDir?: string;
}

function quoteArg(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

export function formatReport(report: PipelineReport, where: ReportContext = {}): string {
  const rows = report.steps.map((s) => [
    s.step,
    s.source === "remote" ? "remote" : s.cached ? "yes" : "no",
    s.seconds.toFixed(2),
    s.key.slice(0, 12),
    mainMetrics(s.step, s.metrics, s.outputs),
  ]);
  const lines = [formatTable(rows, ["step", "cached", "seconds", "key", "metrics"]), "", `run     ${report.runId}`];
  const model = [...report.steps]
    .reverse()
    .find((s) => Object.values(s.outputs).some((o) => (o as { kind?: string }).kind === "keras-model"));
  const modelDir = model ? (Object.values(model.outputs)[0] as { dir?: string }).dir : undefined;
  if (modelDir) lines.push(`model   ${modelDir}`);
  if (report.report) lines.push(`report  ${report.report}`);
  let target: ReturnType<typeof resolveTrackingUri> | undefined;
  try {
    target = resolveTrackingUri(where.trackingUri);
  } catch {
    target = undefined;
  }
  if (target) lines.push(`runs    ${target.kind === "rest" ? target.url : target.root}`);
  const flags = [
    ...(where.trackingUri ? ["--tracking-uri", quoteArg(where.trackingUri)] : []),
    ...(where.cacheDir && where.cacheDir !== defaultCacheDir() ? ["--cache-dir", quoteArg(where.cacheDir)] : []),
  ].join(" ");
  lines.push("", "next:");
  lines.push(`  ms recommend --user 1${flags ? ` ${flags}` : ""}        top 10 movies for user 1 from this run's model`);
  if (target?.kind === "file")
    lines.push(`  MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ${quoteArg(target.root)}   the runs in MLflow's UI`);
  else if (target) lines.push(`  open ${target.url}   the runs in MLflow's UI`);
  return lines.join("\n");
}

/** The live display on a terminal at the default log level (MS_PROGRESS=0 turns it off). */
function wantsLiveProgress(interactive: boolean, logger: { level: string }): boolean {
  return interactive && logger.level === "info" && process.env.MS_PROGRESS !== "0" && process.env.TERM !== "dumb";
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

function parseSteps(list: readonly string[] | undefined, flag: string): string[] {
  return (list ?? []).map((s) => {
    if (!STEPS.includes(s)) throw new BadParameterError(flag, `"${s}" is not a step; steps: ${STEPS.join(", ")}`);
    return s;
  });
}

export function runSpec(epilog?: string): CliSpec<typeof RUN_OPTIONS> {
  return {
    name: "ms run",
    summary: "run download -> etl -> als -> keras with cached steps and MLflow tracking",
    usage: "ms run [--dataset NAME | --ratings-csv PATH | --url URL] [-P KEY=VALUE]... [--cache-dir DIR] [--json]",
    options: RUN_OPTIONS,
    epilog,
    async run(values, _positionals, ctx) {
      const logArtifacts = values["log-artifacts"] ?? "all";
      const remoteCache = values["remote-cache"] ?? (process.env.MS_REMOTE_CACHE || undefined);
      const remoteCacheMode = parseRemoteMode(values["remote-cache-mode"]);
      if (
        !remoteCache &&
        (values["remote-cache-mode"] !== undefined || values["remote-cache-required"] || values["remote-cache-endpoint"] !== undefined)
      ) {
        throw new BadParameterError(
          "--remote-cache",
          "is needed by --remote-cache-mode, --remote-cache-required and --remote-cache-endpoint (or set MS_REMOTE_CACHE)",
        );
      }
      if (logArtifacts !== "all" && logArtifacts !== "manifests" && logArtifacts !== "none")
        throw new BadParameterError("--log-artifacts", `"${logArtifacts}" is not all, manifests or none`);
      if (values.dataset && values["ratings-csv"])
        throw new BadParameterError("--ratings-csv", "give either --dataset or --ratings-csv, not both");
      if (values.url && (values.dataset || values["ratings-csv"]))
        throw new BadParameterError("--url", "give one of --url, --dataset and --ratings-csv");
      const controller = new AbortController();
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) process.exit(EXIT_CODES.INTERRUPTED);
        ctx.logger.warn(`${sig}: stopping after the current step's next checkpoint (again to quit now)`);
        controller.abort(new InterruptedError(`interrupted by ${sig}`));
      };
      // Loaded only for a terminal: log-update and its dependencies cost ~90 ms of CPU, a third of a cached run.
      const live = wantsLiveProgress(ctx.interactive, ctx.logger)
        ? new (await import("./progress.js")).LiveProgress(process.stderr, ctx.logger.level)
        : undefined;
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const report = await runPipeline({
          dataset: values.dataset,
          ratingsCsv: values["ratings-csv"],
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
          logger: live?.logger ?? ctx.logger,
          progress: ctx.interactive,
          events: live && {
            stepStarted: (step) => live.stepStarted(step),
            stepFinished: (s) => live.stepFinished(s.step, s.cached, s.seconds, mainMetrics(s.step, s.metrics, s.outputs), s.source),
            stepFailed: (step, error) => live.stepFailed(step, error instanceof Error ? error.message.split("\n")[0] : String(error)),
          },
          signal: controller.signal,
        });
        live?.stop();
        return { json: report, text: formatReport(report, { trackingUri: values["tracking-uri"], cacheDir: values["cache-dir"] }) };
      } finally {
        live?.stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    },
  };
}

function modelKind(raw: string | undefined): ModelKind {
  const kind = raw ?? "keras";
  if (!(MODEL_KINDS as readonly string[]).includes(kind))
    throw new BadParameterError("--model", `"${kind}" is not one of ${MODEL_KINDS.join(", ")}`);
  return kind as ModelKind;
}

function idFlag(flag: string, raw: string | undefined): number {
  if (raw === undefined) throw new BadParameterError(flag, "is required");
  const id = parseIntegerFlag(flag, raw, 0);
  if (!Number.isSafeInteger(id)) throw new BadParameterError(flag, `"${raw}" is not an id`);
  return id;
}

export const recommendSpec: CliSpec<typeof RECOMMEND_OPTIONS> = {
  name: "ms recommend",
  summary: "rank the movies a user has not rated, with the final model of the latest (or a given) ms run",
  usage: "ms recommend --user ID [--top 10] [--model keras|als] [--run RUN_ID] [--tracking-uri URI] [--cache-dir DIR] [--json]",
  options: RECOMMEND_OPTIONS,
  epilog:
    "Titles come from the release's movies file beside its ratings file (movies.csv, movies.dat, u.item); without one, titles are null.",
  async run(values, _positionals, ctx) {
    const userId = idFlag("--user", values.user);
    const top = parseIntegerFlag("--top", values.top, 10);
    if (top < 1) throw new BadParameterError("--top", `must be >= 1, got ${top}`);
    // No --model: keras, or the run's ALS model when its keras model cannot score new pairs.
    const model = values.model === undefined ? undefined : modelKind(values.model);
    const result = await recommend({
      userId,
      top,
      model,
      runId: values.run,
      experiment: values.experiment,
      trackingUri: values["tracking-uri"],
      entries: new CacheStore(values["cache-dir"] ?? defaultCacheDir()),
      logger: ctx.logger,
    });
    const rows = result.recommendations.map((r, i) => [String(i + 1), String(r.movieId), r.score.toFixed(2), r.title ?? "-"]);
    const text = `${formatTable(rows, ["#", "movie", "score", "title"])}\n\nuser ${userId}, ${result.model} model of run ${result.runId}`;
    return { json: result, text };
  },
};

export const predictSpec: CliSpec<typeof PREDICT_OPTIONS> = {
  name: "ms predict",
  summary: "predict the ratings of (user, movie) pairs with the final model of the latest (or a given) ms run",
  usage:
    "ms predict (--user ID --movie ID | --pairs FILE) [--model keras|als] [--run RUN_ID] [--tracking-uri URI] [--cache-dir DIR] [--json]",
  options: PREDICT_OPTIONS,
  async run(values, _positionals, ctx) {
    if (values.pairs !== undefined && (values.user !== undefined || values.movie !== undefined))
      throw new BadParameterError("--pairs", "give either --pairs or --user and --movie, not both");
    const pairs =
      values.pairs !== undefined
        ? await readPairs(values.pairs)
        : [{ userId: idFlag("--user", values.user), movieId: idFlag("--movie", values.movie) }];
    const model = values.model === undefined ? undefined : modelKind(values.model);
    const result = await predictRatings({
      pairs,
      model,
      runId: values.run,
      experiment: values.experiment,
      trackingUri: values["tracking-uri"],
      entries: new CacheStore(values["cache-dir"] ?? defaultCacheDir()),
      logger: ctx.logger,
    });
    const rows = result.predictions.map((p) => [String(p.userId), String(p.movieId), p.rating.toFixed(3)]);
    return { json: result, text: `${formatTable(rows, ["user", "movie", "rating"])}\n\n${result.model} model of run ${result.runId}` };
  },
};

const human = (n: number) =>
  n >= 1 << 30
    ? `${(n / (1 << 30)).toFixed(1)}G`
    : n >= 1 << 20
      ? `${(n / (1 << 20)).toFixed(1)}M`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)}K`
        : `${n}B`;
const shortParams = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === "string" && v.length > 40 ? `...${v.slice(-37)}` : String(v)}`)
    .join(" ");

export const cacheSpec: CliSpec<typeof CACHE_OPTIONS> = {
  name: "ms cache",
  summary: "list, verify, garbage-collect and share (push, pull) the step cache",
  usage:
    "ms cache ls [--step STEP] [--remote] | verify [--remove] | gc [--older-than AGE] [--keep N] [--dry-run] | push [KEY...] | pull KEY...  [--cache-dir DIR] [--remote-cache URL] [--json]",
  options: CACHE_OPTIONS,
  allowPositionals: true,
  epilog: [
    "Commands:",
    "  ls      entries: key, step, parameters, size, created, last used, producing run",
    "  verify  re-hash every entry against its manifest (exit 5 when one is damaged, unless --remove)",
    "  gc      remove entries by age and/or count per step, and leftovers of killed runs",
    "  push    upload local entries (all, or the KEYs given) to the remote cache (--remote-cache or $MS_REMOTE_CACHE)",
    "  pull    download the entries KEY... (a key or a unique prefix of one) from the remote cache into the local one",
    "  ls --remote  the entries of the remote cache",
  ].join("\n"),
  async run(values, positionals, ctx) {
    const [command, ...rest] = positionals;
    if (rest.length && command !== "push" && command !== "pull")
      throw new BadParameterError(command ?? "cache", `unexpected arguments: ${rest.join(" ")}`);
    const dir = values["cache-dir"] ?? defaultCacheDir();
    ctx.logger.debug({ cacheDir: dir, command }, "cache command");
    const remoteOf = (mode: "read" | "write") => {
      const url = values["remote-cache"] ?? (process.env.MS_REMOTE_CACHE || undefined);
      if (!url)
        throw new BadParameterError(
          "--remote-cache",
          `ms cache ${command ?? ""} needs the remote cache: --remote-cache s3://BUCKET/PREFIX or MS_REMOTE_CACHE`,
        );
      return new S3RemoteStore({ url, mode, required: true, endpoint: values["remote-cache-endpoint"], logger: ctx.logger });
    };
    switch (command) {
      case "push":
        return pushCommand(dir, remoteOf("write"), rest, ctx.logger);
      case "pull":
        return pullCommand(dir, remoteOf("read"), rest);
      case "ls": {
        if (values.remote) {
          const remote = remoteOf("read");
          const entries = (await remote.listEntries()).filter((e) => !values.step || e.step === values.step);
          const rows = entries.map((e) => [
            e.key.slice(0, 12),
            e.step,
            human(e.bytes),
            e.pushedAt?.slice(0, 19) ?? "?",
            e.producedByRun?.slice(0, 12) ?? "-",
            shortParams(e.params),
          ]);
          return {
            json: { remote: remote.url, entries },
            text: entries.length ? formatTable(rows, ["key", "step", "size", "pushed", "run", "params"]) : `no entries in ${remote.url}`,
          };
        }
        const entries = await listCache(dir, { step: values.step });
        const rows = entries.map((e) => [
          e.key.slice(0, 12),
          e.step,
          human(e.bytes),
          e.createdAt?.slice(0, 19) ?? "?",
          e.lastUsedAt?.slice(0, 19) ?? "?",
          e.producedByRun?.slice(0, 12) ?? "-",
          shortParams(e.params),
        ]);
        return {
          json: { cacheDir: dir, entries },
          text: entries.length
            ? formatTable(rows, ["key", "step", "size", "created", "last used", "run", "params"])
            : `no entries in ${dir}`,
        };
      }
      case "verify": {
        const report = await verifyCache(dir, { remove: values.remove === true });
        const unremoved = report.damaged.filter((d) => !d.removed);
        if (unremoved.length) {
          throw new CorruptArtifactError(
            `${unremoved.length} of ${report.checked} cache entries are damaged (run 'ms cache verify --remove' or just rerun; damaged entries are recomputed):\n` +
              unremoved.map((d) => `  ${d.key} (${d.step}): ${d.problems.join("; ")}`).join("\n"),
          );
        }
        const text = `${report.checked} entries checked, ${report.damaged.length ? `${report.damaged.length} damaged and removed` : "all intact"}`;
        return { json: { cacheDir: dir, ...report }, text };
      }
      case "gc": {
        const keep = values.keep !== undefined ? parseIntegerFlag("--keep", values.keep, 0) : undefined;
        if (keep !== undefined && keep < 0) throw new BadParameterError("--keep", `must be >= 0, got ${keep}`);
        const report = await gcCache(dir, {
          olderThanMs: values["older-than"] !== undefined ? parseAge(values["older-than"]) : undefined,
          keepPerStep: keep,
          dryRun: values["dry-run"] === true,
          cleaners: CLEANERS,
        });
        const verb = report.dryRun ? "would remove" : "removed";
        const lines = report.removed.map(
          (r) => `  ${r.key.slice(0, 12)}  ${r.step.padEnd(8)} ${human(r.bytes).padStart(7)}  (${r.reason})`,
        );
        const text = [
          `${verb} ${report.removed.length} entries (${human(report.freedBytes)})${lines.length ? ":" : ""}`,
          ...lines,
          `${verb} ${[`${report.leftovers.tmp.length} temporary directories`, `${report.leftovers.locks.length} stale locks`, ...CLEANERS.map((c) => `${report.leftovers[c.name]?.length ?? 0} ${c.what}`)].join(", ")} of killed runs`,
          ...(report.skippedLocked.length ? [`skipped ${report.skippedLocked.length} entries being computed by a running ms`] : []),
        ].join("\n");
        return { json: { cacheDir: dir, ...report }, text };
      }
      default:
        throw new BadParameterError(
          "command",
          `${command === undefined ? "missing" : `unknown "${command}"`}; use ls, verify, gc, push or pull (see 'ms cache --help')`,
        );
    }
  },
};

/** Signals end a transfer (its AbortSignal) and leave no entry behind. */
async function withSignals<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => controller.abort(new InterruptedError(`interrupted by ${sig}`));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await run(controller.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** `ms cache push [KEY...]`: verified local entries of shareable steps to the remote cache. */
async function pushCommand(dir: string, remote: S3RemoteStore, keys: readonly string[], logger: { info(o: object, m: string): void }) {
  const unshared = new Map(PIPELINE.filter((s) => s.shareable === false).map((s) => [s.name, "its result names a file on this machine"]));
  const { pushed, skipped, bytes } = await withSignals((signal) =>
    pushEntries({
      cacheDir: dir,
      remote,
      keys,
      unshared,
      signal,
      onPushed: (p) => logger.info({ key: p.key.slice(0, 12), step: p.step, bytes: p.bytes }, `pushed ${p.step} ${p.key.slice(0, 12)}`),
    }),
  );
  const text = [
    `pushed ${pushed.length} entries to ${remote.url} (${human(bytes)} sent)`,
    ...skipped.map((s) => `  skipped ${s.key.slice(0, 12)} (${s.step}): ${s.reason}`),
  ].join("\n");
  return { json: { remote: remote.url, cacheDir: dir, pushed, skipped, bytes }, text };
}

/** `ms cache pull KEY...`: remote entries into the local cache (verified as a remote hit is). */
async function pullCommand(dir: string, remote: S3RemoteStore, keys: readonly string[]) {
  const pulled = await withSignals((signal) => pullEntries({ cacheDir: dir, remote, keys, signal }));
  const lines = pulled.map(
    (p) => `  ${p.key.slice(0, 12)}  ${p.step.padEnd(8)} ${p.source === "local" ? "already here" : `${human(p.bytes)} downloaded`}`,
  );
  return {
    json: { remote: remote.url, cacheDir: dir, pulled },
    text: [`pulled ${pulled.filter((p) => p.source === "remote").length} entries from ${remote.url}:`, ...lines].join("\n"),
  };
}

export const MAIN_HELP = `ms: the ms pipeline (download -> etl -> als -> keras) with a content-addressed step cache and MLflow tracking

Usage:
  ms run [options]                 run the pipeline (ms run --help lists every parameter)
  ms recommend --user ID [--top N]  movies for a user, from the latest run's model
  ms predict --user ID --movie ID   a predicted rating (or --pairs FILE)
  ms cache ls|verify|gc|push|pull  inspect, prune and share the step cache
  ms runs ls|show|compare ...      list, show and compare tracked runs

Quick start (offline): ms run --dataset synthetic -P als_max_iter=2 -P keras_epochs=1

Exit codes: 0 ok, ${Object.entries(EXIT_CODES)
  .map(([code, n]) => `${n} ${code.toLowerCase()}`)
  .join(", ")}.
`;

/** Dispatches on the first argument; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run": {
      const help = rest.includes("--help") || rest.includes("-h");
      const names = new Set(buildCatalog(PIPELINE).map((p) => p.name));
      return runCli(runSpec(help ? paramHelp() : undefined), joinParamPairs(paramFlags(rest, names)));
    }
    case "cache":
      return runCli(cacheSpec, rest);
    case "recommend":
      return runCli(recommendSpec, rest);
    case "predict":
      return runCli(predictSpec, rest);
    case "runs":
      return runsCommand(rest, { name: "ms runs" });
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(MAIN_HELP);
      return 0;
    case undefined:
      process.stderr.write(MAIN_HELP);
      return EXIT_CODES.USAGE;
    default:
      process.stderr.write(`ms: error: unknown command "${command}"; use run, recommend, predict, cache or runs (ms --help)\n`);
      return EXIT_CODES.USAGE;
  }
}
