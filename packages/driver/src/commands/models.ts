/**
 * `ms recommend` and `ms predict`: their flags, and the answers of @ms/serve (which finds the run,
 * loads its model and scores) printed as a table or one JSON document for one user or a few
 * pairs, or streamed as CSV / JSON lines for a batch (src/commands/batch.ts).
 */
import {
  abortOnSignals,
  BadParameterError,
  formatTable,
  parseId,
  parseIntegerFlag,
  type CliContext,
  type CliResult,
  type CliSpec,
} from "@ms/contracts";
import { withLeasedEntries } from "@ms/cache";
import {
  MODEL_KINDS,
  predictRatings,
  predictStream,
  readUserIds,
  recommend,
  RECOMMEND_KINDS,
  resolveModelUri,
  type LocateOptions,
  type ResolvedModelUri,
  type ModelKind,
  type PredictionRow,
  type RecommendKind,
  type RecommendResult,
} from "@ms/serve";
import { defaultCacheDir } from "../pipeline.js";
import { PREDICT_CSV_HEADER, RECOMMEND_CSV_HEADER, streamPredictions, streamRecommendations, type StreamFormat } from "./batch.js";
import { SHARED_OPTIONS } from "./options.js";

const FORMATS = ["table", "csv", "jsonl"] as const;
type Format = (typeof FORMATS)[number];

const MODEL_OPTIONS = {
  user: { type: "string", value: "ID", description: "the user id (as in the ratings file)" },
  run: { type: "string", value: "RUN_ID", description: "the ms run to use (default: the latest finished one)" },
  "model-uri": {
    type: "string",
    value: "URI",
    description: "instead of --run: models:/NAME@ALIAS or models:/NAME/VERSION (the registry of an MLflow server), or runs:/RUN_ID/model",
  },
  experiment: { type: "string", value: "NAME", description: "look for the latest run only in this experiment" },
  "tracking-uri": SHARED_OPTIONS["tracking-uri"],
  "cache-dir": SHARED_OPTIONS["cache-dir"],
} as const;

const RECOMMEND_OPTIONS = {
  ...MODEL_OPTIONS,
  users: {
    type: "string",
    value: "FILE|all",
    description:
      "a batch in one process: a file of user ids (one per line, optional header), or all (every user of the run's training part)",
  },
  model: {
    type: "string",
    value: "KIND",
    description: `${RECOMMEND_KINDS.join(", ")} (default: the run's ranker; for a run without one, its keras model, or ALS when keras cannot score new pairs)`,
  },
  top: { type: "string", value: "N", description: "movies per user (default 10)" },
  format: {
    type: "string",
    value: "FORMAT",
    description: `table (one user; the default with --user), csv (${RECOMMEND_CSV_HEADER.join(",")}; the default with --users) or jsonl (one {"userId", "recommendations"} per user)`,
  },
  "exclude-seen": { type: "boolean", description: "leave out the movies the user has rated (the default)" },
  "no-exclude-seen": { type: "boolean", description: "list rated movies too" },
  "min-ratings": { type: "string", value: "N", description: "only movies with at least N training ratings (default 0)" },
} as const;

const PREDICT_OPTIONS = {
  ...MODEL_OPTIONS,
  model: {
    type: "string",
    value: "KIND",
    description: `${MODEL_KINDS.join(" or ")} (default: the run's final model; its ALS model when that one cannot score new pairs)`,
  },
  movie: { type: "string", value: "ID", description: "the movie id (with --user)" },
  pairs: {
    type: "string",
    value: "FILE",
    description:
      "a file of userId,movieId lines instead of --user/--movie, read as a stream (with a header naming a timestamp column, each pair is scored at its time)",
  },
  format: {
    type: "string",
    value: "FORMAT",
    description: `table (the default), csv (${PREDICT_CSV_HEADER.join(",")}) or jsonl (one {"userId", "movieId", "rating"} per pair), the last two streamed`,
  },
} as const;

const MODEL_USAGE = "[--run RUN_ID | --model-uri URI] [--tracking-uri URI] [--cache-dir DIR] [--json]";

function choice<T extends string>(flag: string, raw: string | undefined, kinds: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(kinds as readonly string[]).includes(raw)) throw new BadParameterError(flag, `"${raw}" is not one of ${kinds.join(", ")}`);
  return raw as T;
}

function idFlag(flag: string, raw: string | undefined): number {
  if (raw === undefined) throw new BadParameterError(flag, "is required");
  const id = parseId(raw);
  if (id === undefined) throw new BadParameterError(flag, `"${raw}" is not an id (decimal digits)`);
  return id;
}

function countFlag(flag: string, raw: string | undefined, fallback: number, min: number): number {
  const n = parseIntegerFlag(flag, raw, fallback);
  if (n < min) throw new BadParameterError(flag, `must be >= ${min}, got ${n}`);
  return n;
}

/** The run and model a recommend or predict asks for, from the flags both share. */
type RunFlags = { run?: string; "model-uri"?: string; experiment?: string; "tracking-uri"?: string; "cache-dir"?: string };

/**
 * Calls `read` with the run the flags ask for; the entries read are leased against `ms cache gc` meanwhile.
 * A `--model-uri` is resolved here, once, and handed on resolved.
 */
async function withRun<T>(values: RunFlags, ctx: CliContext, read: (o: LocateOptions) => Promise<T>): Promise<T> {
  if (values["model-uri"] !== undefined && values.run !== undefined)
    throw new BadParameterError("--model-uri", "give either --model-uri or --run, not both");
  const modelUri =
    values["model-uri"] === undefined
      ? undefined
      : await resolveModelUri(values["model-uri"], { trackingUri: values["tracking-uri"], logger: ctx.logger });
  return withLeasedEntries(values["cache-dir"] ?? defaultCacheDir(), (entries) =>
    read({ runId: values.run, modelUri, experiment: values.experiment, trackingUri: values["tracking-uri"], entries, logger: ctx.logger }),
  );
}

/** `withRun` for one document: what `--model-uri` resolved to (the registry's version) joins it. */
async function withRunDoc<T extends object>(
  values: RunFlags,
  ctx: CliContext,
  read: (o: LocateOptions) => Promise<T>,
): Promise<T & { modelUri?: ResolvedModelUri }> {
  let modelUri: ResolvedModelUri | undefined;
  const result = await withRun(values, ctx, (o) => {
    if (typeof o.modelUri === "object") modelUri = o.modelUri;
    return read(o);
  });
  return modelUri ? { ...result, modelUri } : result;
}

/** Where the answer came from when --model-uri named it: the URI and, for the registry, the version. */
function fromUri(uri: ResolvedModelUri | undefined): string {
  if (!uri) return "";
  return uri.version !== undefined ? ` (${uri.uri}: version ${uri.version} of ${uri.name})` : ` (${uri.uri})`;
}

/** A batch's format: refuses `--json` (one document) and `table` for a stream. */
function streamFormat(format: Format, ctx: CliContext, what: string): StreamFormat {
  if (ctx.json) throw new BadParameterError("--json", `prints one document; ${what} is streamed: use --format jsonl (or csv)`);
  if (format === "table") throw new BadParameterError("--format", `table is for one user; ${what} is streamed as csv or jsonl`);
  return format;
}

/** Runs `work` with Ctrl-C aborting it (exit 130). */
async function interruptible<T>(ctx: CliContext, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = abortOnSignals(ctx.logger, "stopping the batch");
  try {
    return await work(abort.signal);
  } finally {
    abort.dispose();
  }
}

function recommendTable(result: RecommendResult & { modelUri?: ResolvedModelUri }): string {
  const reasons = result.recommendations.some((r) => r.reasons?.length);
  const rows = result.recommendations.map((r, i) => [
    String(i + 1),
    String(r.movieId),
    String(r.score),
    r.title ?? "-",
    ...(reasons ? [(r.reasons ?? []).map((x) => x.title ?? String(x.movieId)).join("; ")] : []),
  ]);
  const header = ["#", "movie", "score", "title", ...(reasons ? ["because you rated"] : [])];
  return `${formatTable(rows, header)}\n\nuser ${result.userId}, ${result.model} model of run ${result.runId}${fromUri(result.modelUri)}`;
}

export const recommendSpec: CliSpec<typeof RECOMMEND_OPTIONS> = {
  name: "ms recommend",
  summary: "list the movies users have not seen, best first, with the ranker (or another model) of the latest (or a given) ms run",
  usage: `ms recommend (--user ID | --users FILE|all) [--top 10] [--model ${RECOMMEND_KINDS.join("|")}] [--format table|csv|jsonl] [--no-exclude-seen] [--min-ratings N] ${MODEL_USAGE}`,
  options: RECOMMEND_OPTIONS,
  epilog: [
    "Titles come from the release's movies file beside its ratings file (movies.csv, movies.dat, u.item); without one, titles are null.",
    "Seen movies are the user's ratings in the run's data (with split=file, the main file's; the test file's are held out).",
    "In a batch, a user the model cannot answer is named on stderr and on its row (jsonl: an error field; csv: left out);",
    "the other rows are written, and the exit code is then 9. A reader that closes the pipe (| head) ends the batch quietly.",
  ].join("\n"),
  async run(values, _positionals, ctx) {
    if (values.users !== undefined && values.user !== undefined)
      throw new BadParameterError("--users", "give either --user or --users, not both");
    if (values["exclude-seen"] && values["no-exclude-seen"]) throw new BadParameterError("--no-exclude-seen", "contradicts --exclude-seen");
    const model = choice<RecommendKind>("--model", values.model, RECOMMEND_KINDS);
    const top = countFlag("--top", values.top, 10, 1);
    const list = {
      model,
      top,
      excludeSeen: !values["no-exclude-seen"],
      minRatings: countFlag("--min-ratings", values["min-ratings"], 0, 0),
    };
    const format = choice<Format>("--format", values.format, FORMATS) ?? (values.users !== undefined ? "csv" : "table");
    if (values.users === undefined) {
      const userId = idFlag("--user", values.user);
      if (format === "table" || ctx.json) {
        const result = await withRunDoc(values, ctx, (o) => recommend({ ...o, ...list, userId }));
        return { json: result, text: recommendTable(result) };
      }
    }
    const stream = streamFormat(format, ctx, "a batch");
    const users: ArrayLike<number> | "all" =
      values.users === undefined ? [idFlag("--user", values.user)] : values.users === "all" ? "all" : await readUserIds(values.users);
    // csv has no column for reasons: the ranker's batch path skips them.
    const batch = { ...list, users, reasons: stream === "jsonl" };
    await interruptible(ctx, (signal) =>
      withRun(values, ctx, (o) => streamRecommendations(stream, { ...o, ...batch, signal }, ctx.logger)),
    );
    return { json: undefined };
  },
};

function predictTable(rows: PredictionRow[], model: string, runId: string, uri?: ResolvedModelUri): string {
  const cold = rows.some((p) => p.cold);
  const body = rows.map((p) => [String(p.userId), String(p.movieId), p.rating.toFixed(3), ...(cold ? [p.cold ?? ""] : [])]);
  return `${formatTable(body, ["user", "movie", "rating", ...(cold ? ["cold start"] : [])])}\n\n${model} model of run ${runId}${fromUri(uri)}`;
}

export const predictSpec: CliSpec<typeof PREDICT_OPTIONS> = {
  name: "ms predict",
  summary: "predict the ratings of (user, movie) pairs with the final model of the latest (or a given) ms run",
  usage: `ms predict (--user ID --movie ID | --pairs FILE [--format table|csv|jsonl]) [--model ${MODEL_KINDS.join("|")}] ${MODEL_USAGE}`,
  options: PREDICT_OPTIONS,
  epilog: [
    "A pair whose user or movie has no factors is scored by the cold-start rule the steps score such test rows with",
    "(training mean plus the known side's damped bias, clamped to [0.5, 5]) and marked on its row (cold: user, movie or user+movie);",
    "the MLflow Model's pyfunc and ms serve score it the same way.",
    "A model with time effects (the fm step's time group) scores a pair at the timestamp given for it",
    "(a --pairs file whose header names a timestamp column, e.g. a MovieLens ratings file), else at the end of its training range.",
  ].join("\n"),
  async run(values, _positionals, ctx): Promise<CliResult> {
    const model = choice<ModelKind>("--model", values.model, MODEL_KINDS);
    const format = choice<Format>("--format", values.format, FORMATS) ?? "table";
    if (values.pairs === undefined) {
      if (format !== "table")
        throw new BadParameterError("--format", "csv and jsonl stream a --pairs file; one pair prints as a table or --json");
      const pair = { userId: idFlag("--user", values.user), movieId: idFlag("--movie", values.movie) };
      const result = await withRunDoc(values, ctx, (o) => predictRatings({ ...o, model, pairs: [pair] }));
      return { json: result, text: predictTable(result.predictions, result.model, result.runId, result.modelUri) };
    }
    if (values.user !== undefined || values.movie !== undefined)
      throw new BadParameterError("--pairs", "give either --pairs or --user and --movie, not both");
    const file = values.pairs;
    if (format === "table" || ctx.json) {
      // One document or one table: every row is held (the table's widths need them all).
      const predictions: PredictionRow[] = [];
      const result = await withRunDoc(values, ctx, (o) =>
        predictStream({ ...o, model, file }, (rows) => {
          for (const row of rows) predictions.push(row);
        }),
      );
      ctx.logger.info({ ...result }, `predicted ${result.pairs} pairs (${result.cold} by the cold-start rule)`);
      const json = {
        runId: result.runId,
        ...(result.modelUri ? { modelUri: result.modelUri } : {}),
        model: result.model,
        cold: result.cold,
        predictions,
      };
      return { json, text: predictTable(predictions, result.model, result.runId, result.modelUri) };
    }
    const stream = streamFormat(format, ctx, "--pairs");
    await interruptible(ctx, (signal) => withRun(values, ctx, (o) => streamPredictions(stream, { ...o, model, file, signal }, ctx.logger)));
    return { json: undefined };
  },
};
