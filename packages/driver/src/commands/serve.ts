/**
 * `ms serve`: its flags, and @ms/server's `serve` over the run the flags name (the latest finished
 * one, or `--run`), its cache entries leased against `ms cache gc` while it serves. With `--json`
 * the one JSON document (the bound URL, the run, the model) is printed once listening.
 */
import { BadParameterError, parseIntegerFlag, parseNumberFlag, type CliSpec } from "@ms/contracts";
import { withLeasedEntries } from "@ms/cache";
import { MODEL_KINDS, parseModelUri, type ModelKind } from "@ms/serve";
import { DEFAULT_LIMITS, locateSource, serve, type ServerLimits } from "@ms/server";
import { defaultCacheDir } from "../pipeline.js";
import { SHARED_OPTIONS } from "./options.js";

const SERVE_OPTIONS = {
  host: { type: "string", value: "HOST", description: "the address to listen on (default 127.0.0.1)" },
  port: { type: "string", value: "N", description: "the port (default 5000; 0 picks a free one, printed on stderr and in --json)" },
  "model-uri": {
    type: "string",
    value: "URI",
    description:
      "serve models:/NAME@ALIAS, models:/NAME/VERSION or runs:/ID/model (an alias is re-resolved on SIGHUP and every --refresh-seconds)",
  },
  run: {
    type: "string",
    value: "RUN_ID",
    description: "serve this ms run's model (default: the latest finished one, re-resolved on SIGHUP)",
  },
  experiment: { type: "string", value: "NAME", description: "look for the latest run only in this experiment" },
  model: { type: "string", value: "KIND", description: `${MODEL_KINDS.join(" or ")} (default: the run's final model)` },
  "refresh-seconds": {
    type: "string",
    value: "S",
    description: "re-resolve the model every S seconds and swap in a new run's (default 0: on SIGHUP only)",
  },
  "max-body-bytes": { type: "string", value: "N", description: `largest request body, 413 past it (default ${DEFAULT_LIMITS.bodyLimit})` },
  "max-batch": { type: "string", value: "N", description: `most pairs in one request, 400 past it (default ${DEFAULT_LIMITS.maxBatch})` },
  "max-in-flight": {
    type: "string",
    value: "N",
    description: `most requests worked on at once, 503 past it (default ${DEFAULT_LIMITS.maxInFlight})`,
  },
  "request-timeout-seconds": {
    type: "string",
    value: "S",
    description: `longest a client may take to send a request, 408 past it (default ${DEFAULT_LIMITS.requestTimeoutMs / 1000})`,
  },
  "drain-seconds": {
    type: "string",
    value: "S",
    description: "on SIGTERM, how long requests in progress may take before their connections are cut (default 10)",
  },
  "tracking-uri": SHARED_OPTIONS["tracking-uri"],
  "cache-dir": SHARED_OPTIONS["cache-dir"],
} as const;

function modelKind(raw: string | undefined): ModelKind | undefined {
  if (raw === undefined) return undefined;
  if (!(MODEL_KINDS as readonly string[]).includes(raw))
    throw new BadParameterError("--model", `"${raw}" is not one of ${MODEL_KINDS.join(", ")}`);
  return raw as ModelKind;
}

function positive(flag: string, n: number, min: number): number {
  if (!(n >= min)) throw new BadParameterError(flag, `must be >= ${min}, got ${n}`);
  return n;
}

type Flags = Partial<Record<keyof typeof SERVE_OPTIONS, string>>;

function limitsOf(v: Flags): ServerLimits {
  return {
    ...DEFAULT_LIMITS,
    bodyLimit: positive("--max-body-bytes", parseIntegerFlag("--max-body-bytes", v["max-body-bytes"], DEFAULT_LIMITS.bodyLimit), 1),
    maxBatch: positive("--max-batch", parseIntegerFlag("--max-batch", v["max-batch"], DEFAULT_LIMITS.maxBatch), 1),
    maxInFlight: positive("--max-in-flight", parseIntegerFlag("--max-in-flight", v["max-in-flight"], DEFAULT_LIMITS.maxInFlight), 1),
    requestTimeoutMs:
      1000 *
      positive(
        "--request-timeout-seconds",
        parseNumberFlag("--request-timeout-seconds", v["request-timeout-seconds"], DEFAULT_LIMITS.requestTimeoutMs / 1000),
        0.1,
      ),
  };
}

export const serveSpec: CliSpec<typeof SERVE_OPTIONS> = {
  name: "ms serve",
  summary: "an HTTP scoring server (MLflow's scoring protocol, and /recommend) over the model of the latest (or a given) ms run",
  usage:
    "ms serve [--host 127.0.0.1] [--port 5000] [--model-uri models:/NAME@ALIAS | --run RUN_ID] [--model keras|als] [--refresh-seconds S] [--json]",
  options: SERVE_OPTIONS,
  epilog: [
    "Routes: GET /ping, /health, /version, /model; POST /invocations (application/json with dataframe_split,",
    "dataframe_records, instances or inputs; or text/csv; columns userId, movieId -> predictions), POST /recommend",
    '({"users": [ids], "k": 10, "exclude_seen": true, "exclude": [movieIds]}). Errors are MLflow\'s JSON',
    '({"error_code": "BAD_REQUEST", "message": ...}). Access logs: one JSON line per request on stderr.',
    "Signals: SIGTERM/SIGINT close gracefully (requests in progress are answered; exit 0); SIGHUP re-resolves the run",
    "and swaps its model in without dropping a request.",
  ].join("\n"),
  async run(values, _positionals, ctx) {
    const port = parseIntegerFlag("--port", values.port, 5000);
    if (port < 0 || port > 65535) throw new BadParameterError("--port", `must be in 0..65535, got ${port}`);
    const limits = limitsOf(values);
    const refreshSeconds = positive("--refresh-seconds", parseNumberFlag("--refresh-seconds", values["refresh-seconds"], 0), 0);
    const drainSeconds = positive("--drain-seconds", parseNumberFlag("--drain-seconds", values["drain-seconds"], 10), 0);
    const model = modelKind(values.model);
    if (values["model-uri"] !== undefined && values.run !== undefined)
      throw new BadParameterError("--model-uri", "give either --model-uri or --run, not both");
    // A malformed URI is refused before anything is opened.
    if (values["model-uri"] !== undefined) parseModelUri(values["model-uri"]);
    const result = await withLeasedEntries(values["cache-dir"] ?? defaultCacheDir(), (entries) =>
      serve({
        host: values.host ?? "127.0.0.1",
        port,
        limits,
        refreshSeconds,
        drainSeconds,
        logger: ctx.logger,
        source: locateSource({
          model,
          runId: values.run,
          modelUri: values["model-uri"],
          experiment: values.experiment,
          trackingUri: values["tracking-uri"],
          entries,
          logger: ctx.logger,
          source: values["model-uri"] ?? (values.run ? `run ${values.run}` : "latest"),
        }),
        onListening: (info) => {
          process.stderr.write(`ms serve: listening on ${info.url} (${info.model} model of run ${info.runId})\n`);
          if (ctx.json) process.stdout.write(`${JSON.stringify(info)}\n`);
        },
      }),
    );
    // With --json the one document was printed once listening: nothing more goes to stdout.
    return { json: undefined, text: ctx.json ? undefined : `served ${result.url} until ${result.stoppedBy} (${result.swaps} model swaps)` };
  },
};
