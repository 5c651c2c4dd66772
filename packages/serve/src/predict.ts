/**
 * Predicted ratings of any number of (user, movie) pairs, streamed: the pairs file is read in
 * chunks (`pairChunks`), each chunk's known pairs scored in one predict call, and the rows handed
 * to a sink (awaited: back-pressure) before the next chunk is read. A pair whose user or movie the
 * model has no factors for is scored by the cold-start rule every step scores such test rows with
 * (@ms/contracts' `ColdStartRule`: the training mean plus the known side's damped bias, clamped to
 * [0.5, 5]), and marked `cold` on its row: it does not fail the batch.
 */
import { BadInputError, ColdStartRule, InterruptedError, splitMaskOf } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { splitOfRun } from "./batch.js";
import type { LocatedRun, LocateOptions, RunModelDirs } from "./locate.js";
import { countPairs, pairChunks, PAIR_CHUNK } from "./pairs.js";
import { withModel } from "./recommend.js";
import { publishedRating, type ModelKind } from "./serve.js";

/** Which side of a pair the model has no factors for. */
export type ColdSide = "user" | "movie" | "user+movie";

export interface PredictionRow {
  userId: number;
  movieId: number;
  rating: number;
  /** Set when the cold-start rule scored the pair. */
  cold?: ColdSide;
}

export interface PredictStreamOptions extends LocateOptions {
  /** A pairs file (`userId,movieId` lines); checked line by line before anything is scored. */
  file: string;
  model?: ModelKind;
  /** Pairs per chunk (default 65,536). */
  chunk?: number;
  signal?: AbortSignal;
}

export interface PredictStart {
  runId: string;
  model: ModelKind;
  dir: string;
}

export interface PredictSummary extends PredictStart {
  pairs: number;
  /** Pairs scored by the cold-start rule. */
  cold: number;
}

/** The run's cold-start rule, fitted on its training part; built on the first cold pair only (it reads every rating). */
function lazyColdRule(run: LocatedRun, dirs: RunModelDirs): () => Promise<ColdStartRule> {
  let rule: Promise<ColdStartRule> | undefined;
  return () => {
    rule ??= readRatingsColumns(dirs.ratings).then((ratings) => new ColdStartRule(ratings, splitMaskOf(splitOfRun(run), ratings)));
    return rule;
  };
}

/**
 * Streams the predictions of every pair of `o.file` to `sink`, one array per chunk, in file order.
 * `start` hears which run and model answer before the first rows.
 */
export async function predictStream(
  o: PredictStreamOptions,
  sink: (rows: PredictionRow[]) => void | Promise<void>,
  start?: (info: PredictStart) => void | Promise<void>,
): Promise<PredictSummary> {
  // A first pass checks every line, so a bad line fails (exit 3, file and line) before any row is written.
  if ((await countPairs(o.file)) === 0) throw new BadInputError("holds no userId,movieId pairs", { file: o.file });
  return withModel(o, async (model, run, dirs) => {
    const info: PredictStart = { runId: run.runId, model: model.kind, dir: model.dir };
    await start?.(info);
    const coldRule = lazyColdRule(run, dirs);
    let pairs = 0;
    let cold = 0;
    for await (const chunk of pairChunks(o.file, o.chunk ?? PAIR_CHUNK)) {
      if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new InterruptedError();
      const n = chunk.userIds.length;
      const side: (ColdSide | undefined)[] = new Array(n);
      let warm = 0;
      for (let i = 0; i < n; i++) {
        const u = model.hasUser(chunk.userIds[i]);
        const m = model.hasMovie(chunk.movieIds[i]);
        side[i] = u && m ? undefined : !u && !m ? "user+movie" : u ? "movie" : "user";
        if (!side[i]) warm++;
      }
      const users = new Int32Array(warm);
      const movies = new Int32Array(warm);
      for (let i = 0, w = 0; i < n; i++) {
        if (side[i]) continue;
        users[w] = chunk.userIds[i];
        movies[w++] = chunk.movieIds[i];
      }
      const scores = warm ? await model.predict(users, movies) : new Float64Array(0);
      const rule = warm < n ? await coldRule() : undefined;
      const rows: PredictionRow[] = new Array(n);
      for (let i = 0, w = 0; i < n; i++) {
        const userId = chunk.userIds[i];
        const movieId = chunk.movieIds[i];
        const s = side[i];
        rows[i] = s
          ? { userId, movieId, rating: publishedRating((rule as ColdStartRule).predict(userId, movieId), model), cold: s }
          : { userId, movieId, rating: publishedRating(scores[w++], model) };
      }
      pairs += n;
      cold += n - warm;
      await sink(rows);
    }
    return { ...info, pairs, cold };
  });
}
