/**
 * `ms recommend` and `ms predict`: their flags, and the answer of @ms/serve (which finds the run,
 * loads its model and scores) printed as a table.
 */
import { BadParameterError, formatTable, parseId, parseIntegerFlag, type CliContext, type CliSpec } from "@ms/contracts";
import { withLeasedEntries } from "@ms/cache";
import {
  MODEL_KINDS,
  predictRatings,
  readPairs,
  recommend,
  resolveModelUri,
  type LocateOptions,
  type ModelKind,
  type ResolvedModelUri,
} from "@ms/serve";
import { defaultCacheDir } from "../pipeline.js";
import { SHARED_OPTIONS } from "./options.js";

const MODEL_OPTIONS = {
  user: { type: "string", value: "ID", description: "the user id (as in the ratings file)" },
  model: {
    type: "string",
    value: "KIND",
    description: `${MODEL_KINDS.join(" or ")} (default: the run's final model; its ALS model when that one cannot score new pairs)`,
  },
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
  top: { type: "string", value: "N", description: "how many movies (default 10)" },
} as const;

const PREDICT_OPTIONS = {
  ...MODEL_OPTIONS,
  movie: { type: "string", value: "ID", description: "the movie id (with --user)" },
  pairs: { type: "string", value: "FILE", description: "a file of userId,movieId lines instead of --user/--movie" },
} as const;

const MODEL_USAGE = `[--model ${MODEL_KINDS.join("|")}] [--run RUN_ID | --model-uri URI] [--tracking-uri URI] [--cache-dir DIR] [--json]`;

function isModelKind(kind: string): kind is ModelKind {
  return (MODEL_KINDS as readonly string[]).includes(kind);
}

/** `--model`, checked; undefined (not given) lets @ms/serve choose the run's final model. */
function modelKind(raw: string | undefined): ModelKind | undefined {
  if (raw === undefined) return undefined;
  if (!isModelKind(raw)) throw new BadParameterError("--model", `"${raw}" is not one of ${MODEL_KINDS.join(", ")}`);
  return raw;
}

function idFlag(flag: string, raw: string | undefined): number {
  if (raw === undefined) throw new BadParameterError(flag, "is required");
  const id = parseId(raw);
  if (id === undefined) throw new BadParameterError(flag, `"${raw}" is not an id (decimal digits)`);
  return id;
}

/** Where the answer came from when --model-uri named it: the URI and, for the registry, the version. */
function fromUri(uri: ResolvedModelUri | undefined): string {
  if (!uri) return "";
  return uri.version !== undefined ? ` (${uri.uri}: version ${uri.version} of ${uri.name})` : ` (${uri.uri})`;
}

/** The run and model a recommend or predict asks for, from the flags both share. */
type ModelFlags = {
  model?: string;
  run?: string;
  "model-uri"?: string;
  experiment?: string;
  "tracking-uri"?: string;
  "cache-dir"?: string;
};

/**
 * Calls `read` with the run and model the flags ask for; the entries read are leased against `ms cache gc` meanwhile.
 * A `--model-uri` is resolved here, once, and what it resolved to (the registry's version) joins the answer.
 */
async function withRunModel<T extends object>(
  values: ModelFlags,
  ctx: CliContext,
  read: (o: LocateOptions & { model: ModelKind | undefined }) => Promise<T>,
): Promise<T & { modelUri?: ResolvedModelUri }> {
  if (values["model-uri"] !== undefined && values.run !== undefined)
    throw new BadParameterError("--model-uri", "give either --model-uri or --run, not both");
  const modelUri =
    values["model-uri"] === undefined
      ? undefined
      : await resolveModelUri(values["model-uri"], { trackingUri: values["tracking-uri"], logger: ctx.logger });
  const result = await withLeasedEntries(values["cache-dir"] ?? defaultCacheDir(), (entries) =>
    read({
      model: modelKind(values.model),
      runId: values.run,
      modelUri,
      experiment: values.experiment,
      trackingUri: values["tracking-uri"],
      entries,
      logger: ctx.logger,
    }),
  );
  return modelUri ? { ...result, modelUri } : result;
}

export const recommendSpec: CliSpec<typeof RECOMMEND_OPTIONS> = {
  name: "ms recommend",
  summary: "rank the movies a user has not rated, with the final model of the latest (or a given) ms run",
  usage: `ms recommend --user ID [--top 10] ${MODEL_USAGE}`,
  options: RECOMMEND_OPTIONS,
  epilog:
    "Titles come from the release's movies file beside its ratings file (movies.csv, movies.dat, u.item); without one, titles are null.",
  async run(values, _positionals, ctx) {
    const userId = idFlag("--user", values.user);
    const top = parseIntegerFlag("--top", values.top, 10);
    if (top < 1) throw new BadParameterError("--top", `must be >= 1, got ${top}`);
    const result = await withRunModel(values, ctx, (o) => recommend({ userId, top, ...o }));
    const rows = result.recommendations.map((r, i) => [String(i + 1), String(r.movieId), r.score.toFixed(2), r.title ?? "-"]);
    const text = `${formatTable(rows, ["#", "movie", "score", "title"])}\n\nuser ${userId}, ${result.model} model of run ${result.runId}${fromUri(result.modelUri)}`;
    return { json: result, text };
  },
};

export const predictSpec: CliSpec<typeof PREDICT_OPTIONS> = {
  name: "ms predict",
  summary: "predict the ratings of (user, movie) pairs with the final model of the latest (or a given) ms run",
  usage: `ms predict (--user ID --movie ID | --pairs FILE) ${MODEL_USAGE}`,
  options: PREDICT_OPTIONS,
  async run(values, _positionals, ctx) {
    if (values.pairs !== undefined && (values.user !== undefined || values.movie !== undefined))
      throw new BadParameterError("--pairs", "give either --pairs or --user and --movie, not both");
    const pairs =
      values.pairs !== undefined
        ? await readPairs(values.pairs)
        : [{ userId: idFlag("--user", values.user), movieId: idFlag("--movie", values.movie) }];
    const result = await withRunModel(values, ctx, (o) => predictRatings({ pairs, ...o }));
    const rows = result.predictions.map((p) => [String(p.userId), String(p.movieId), p.rating.toFixed(3)]);
    return {
      json: result,
      text: `${formatTable(rows, ["user", "movie", "rating"])}\n\n${result.model} model of run ${result.runId}${fromUri(result.modelUri)}`,
    };
  },
};
