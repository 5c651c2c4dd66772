/**
 * What a person gets out of a run without writing code: `recommend` ranks the movies a user has
 * not rated with the final model of a run, `predictRatings` scores given (user, movie) pairs,
 * `readPairs` reads such pairs from a file. The run and its entries are found by `locateRun`.
 * Titles come from the release's movies file beside the ratings file.
 */
import { promises as fs } from "node:fs";
import { BadInputError, BadParameterError, CorruptArtifactError, parseId } from "@ms/contracts";
import { readMovieTitles, readRatingsColumns, readRawDataset } from "@ms/etl";
import { locateRun, modelDirs, type LocatedRun, type LocateOptions, type RunModelDirs } from "./locate.js";
import { kerasServing, openModel, type ModelKind, type ServedModel } from "./serve.js";

async function titlesOf(raw: string | undefined): Promise<Map<number, string> | undefined> {
  if (!raw) return undefined;
  const record = await readRawDataset(raw);
  return (await readMovieTitles(record.ratingsFile))?.titles;
}

function describeIds(ids: Int32Array): string {
  return ids.length ? `${ids.length} of them, ids ${ids[0]}..${ids[ids.length - 1]}` : "none";
}

function unknownUser(model: Known, run: LocatedRun, user: number, flag: string): BadParameterError {
  return new BadParameterError(
    flag,
    `user ${user} is not in the training ratings of run ${run.runId}, so the ${model.kind} model has no factors for them (users: ${describeIds(model.userIds)}); this model has no cold-start rule`,
  );
}

function finite(value: number, model: ServedModel): number {
  if (!Number.isFinite(value)) throw new CorruptArtifactError(`${model.dir}: the ${model.kind} model predicted ${value}`);
  return Number(value.toFixed(4));
}

export interface RecommendOptions extends LocateOptions {
  userId: number;
  top?: number;
  model?: ModelKind;
}

export interface Recommendation {
  movieId: number;
  title: string | null;
  score: number;
}

export interface RecommendResult {
  runId: string;
  model: ModelKind;
  userId: number;
  recommendations: Recommendation[];
}

type Known = Pick<ServedModel, "kind" | "userIds" | "movieIds" | "hasUser" | "hasMovie">;

/** Opens the run's model of `o.model` (default keras, else its ALS model), hands it to `use`, and disposes of it. */
export async function withModel<T>(
  o: LocateOptions & { model?: ModelKind },
  use: (model: ServedModel, run: LocatedRun, dirs: RunModelDirs) => Promise<T>,
  check?: (known: Known, run: LocatedRun) => void,
): Promise<T> {
  const run = await locateRun(o);
  let kind: ModelKind = o.model ?? "keras";
  let dirs = modelDirs(run, kind);
  // Without --model, a keras model that cannot score new pairs (an older stacked one) gives way to the run's ALS model (said in the output's `model`).
  if (kind === "keras" && o.model === undefined && dirs.model && !(await kerasServing(dirs.model)).servable) {
    o.logger?.warn(
      { model: dirs.model },
      "the run's keras model cannot score new pairs (it saved no tables for them); using its ALS model",
    );
    kind = "als";
    dirs = modelDirs(run, kind);
  }
  const model = await openModel(kind, dirs, { check: check && ((known) => check(known, run)) });
  try {
    return await use(model, run, dirs);
  } finally {
    model.dispose();
  }
}

/** The `top` movies with the highest predicted rating among those the user has not rated in the run's ratings. */
export async function recommend(o: RecommendOptions): Promise<RecommendResult> {
  const top = o.top ?? 10;
  if (!Number.isInteger(top) || top < 1) throw new BadParameterError("--top", `must be an integer >= 1, got ${top}`);
  return withModel(
    o,
    async (model, run, dirs) => {
      const ratings = await readRatingsColumns(dirs.ratings);
      const rated = new Set<number>();
      for (let i = 0; i < ratings.rows; i++) if (ratings.userIds[i] === o.userId) rated.add(ratings.movieIds[i]);
      const candidates = Int32Array.from(model.movieIds.filter((m) => !rated.has(m)));
      const scores = await model.predict(new Int32Array(candidates.length).fill(o.userId), candidates);
      const order = Array.from(candidates.keys()).sort((a, b) => scores[b] - scores[a] || candidates[a] - candidates[b]);
      const titles = await titlesOf(dirs.raw);
      const recommendations = order
        .slice(0, top)
        .map((i) => ({ movieId: candidates[i], title: titles?.get(candidates[i]) ?? null, score: finite(scores[i], model) }));
      return { runId: run.runId, model: model.kind, userId: o.userId, recommendations };
    },
    (known, run) => {
      if (!known.hasUser(o.userId)) throw unknownUser(known, run, o.userId, "--user");
    },
  );
}

export interface PredictOptions extends LocateOptions {
  pairs: { userId: number; movieId: number }[];
  model?: ModelKind;
}

export interface PredictResult {
  runId: string;
  model: ModelKind;
  predictions: { userId: number; movieId: number; rating: number }[];
}

/** Predicted ratings of (user, movie) pairs; an id the model has no factors for is a parameter error naming it. */
export async function predictRatings(o: PredictOptions): Promise<PredictResult> {
  if (!o.pairs.length) throw new BadParameterError("--pairs", "no (user, movie) pairs given");
  return withModel(
    o,
    async (model, run) => {
      const users = Int32Array.from(o.pairs, (p) => p.userId);
      const movies = Int32Array.from(o.pairs, (p) => p.movieId);
      const scores = await model.predict(users, movies);
      return {
        runId: run.runId,
        model: model.kind,
        predictions: o.pairs.map((p, i) => ({ userId: p.userId, movieId: p.movieId, rating: finite(scores[i], model) })),
      };
    },
    (known, run) => {
      for (const p of o.pairs) {
        if (!known.hasUser(p.userId)) throw unknownUser(known, run, p.userId, "--user");
        if (!known.hasMovie(p.movieId)) {
          throw new BadParameterError(
            "--movie",
            `movie ${p.movieId} has no ratings in the training data of run ${run.runId}, so the ${known.kind} model has no factors for it (movies: ${describeIds(known.movieIds)})`,
          );
        }
      }
    },
  );
}

/** `userId,movieId` lines (a header line and blank lines are skipped); a bad line names the file and line (exit 3). */
export async function readPairs(file: string): Promise<{ userId: number; movieId: number }[]> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    throw new BadInputError(`cannot be read (${(error as Error).message})`, { file }, { cause: error });
  }
  const out: { userId: number; movieId: number }[] = [];
  const lines = text.split(/\r?\n/);
  let columns: PairColumns = { user: 0, movie: 1 };
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (!line) continue;
    const f = line.split(/\s*[,\t ]\s*/);
    if (out.length === 0 && n === firstLine(lines) && /^[a-z_]+$/i.test(f[0] ?? "")) {
      columns = pairColumns(f, file, n + 1);
      continue;
    }
    const u = parseId(f[columns.user] ?? "");
    const m = parseId(f[columns.movie] ?? "");
    if (u === undefined || m === undefined)
      throw new BadInputError(`not a "userId,movieId" line (ids are decimal digits): ${JSON.stringify(lines[n].slice(0, 80))}`, {
        file,
        line: n + 1,
      });
    out.push({ userId: u, movieId: m });
  }
  return out;
}

interface PairColumns {
  user: number;
  movie: number;
}

const USER_NAMES = new Set(["userid", "user_id", "user"]);
const MOVIE_NAMES = new Set(["movieid", "movie_id", "movie", "itemid", "item_id", "item"]);

/** The index of the first line with text. */
function firstLine(lines: readonly string[]): number {
  return lines.findIndex((l) => l.trim() !== "");
}

/** Where the user and the movie ids are, by a header's names (`movieId,userId` is read that way round). */
function pairColumns(names: readonly string[], file: string, line: number): PairColumns {
  const lower = names.map((n) => n.toLowerCase());
  const user = lower.findIndex((n) => USER_NAMES.has(n));
  const movie = lower.findIndex((n) => MOVIE_NAMES.has(n));
  if (user < 0 || movie < 0)
    throw new BadInputError(
      `a header needs a user column (userId, user_id, user) and a movie column (movieId, movie_id, movie, item_id), found ${JSON.stringify(names.join(","))}`,
      { file, line },
    );
  return { user, movie };
}
