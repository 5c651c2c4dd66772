/**
 * The streamed halves of `ms recommend --users` and `ms predict --pairs --format csv|jsonl`: rows
 * from @ms/serve's `recommendBatch` / `predictStream` written as they come (`StreamOut`), which
 * run and model answered said on stderr, a row that could not be answered reported on stderr and
 * on its row (jsonl: an `error` field; csv: left out), and a batch with such rows ending in
 * `PartialFailureError` (exit 9) once every other row is written. A reader that closed stdout ends
 * the batch quietly (exit 0).
 */
import { PartialFailureError, type Logger } from "@ms/contracts";
import { predictStream, recommendBatch, type BatchOptions, type BatchRow, type PredictionRow, type PredictStreamOptions } from "@ms/serve";
import { csvRecord, OutputClosedError, StreamOut } from "./output.js";

export type StreamFormat = "csv" | "jsonl";

/** Rows reported one by one on stderr before the rest are only counted. */
const WARN_ROWS = 10;

export const RECOMMEND_CSV_HEADER = ["userId", "rank", "movieId", "score", "title"] as const;
export const PREDICT_CSV_HEADER = ["userId", "movieId", "rating", "cold"] as const;

/** Runs `work` writing to a StreamOut on stdout; a closed stdout ends it quietly (false: not every row was written). */
async function streamed(logger: Logger, work: (out: StreamOut) => Promise<void>): Promise<boolean> {
  const out = new StreamOut();
  try {
    await work(out);
    await out.end();
    return true;
  } catch (error) {
    await out.end().catch(() => undefined);
    if (!(error instanceof OutputClosedError)) throw error;
    logger.debug("stdout closed by its reader: stopping");
    return false;
  }
}

function recommendLine(format: StreamFormat, row: BatchRow): string | undefined {
  if (format === "jsonl") return JSON.stringify(row);
  if ("error" in row) return undefined;
  return row.recommendations.map((r, i) => csvRecord([row.userId, i + 1, r.movieId, r.score, r.title])).join("\n") || undefined;
}

/** `ms recommend --users ...` as CSV or JSON lines; exit 9 (after the last row) when some users could not be answered. */
export async function streamRecommendations(format: StreamFormat, o: BatchOptions, logger: Logger): Promise<void> {
  let failed = 0;
  let total = 0;
  const complete = await streamed(logger, async (out) => {
    if (format === "csv") await out.line(RECOMMEND_CSV_HEADER.join(","));
    const summary = await recommendBatch(
      o,
      async (row) => {
        if ("error" in row && ++failed <= WARN_ROWS)
          logger.warn({ userId: row.userId }, `${row.error}${format === "csv" ? " (left out of the csv)" : ""}`);
        const line = recommendLine(format, row);
        if (line !== undefined) await out.line(line);
      },
      (start) => {
        total = start.users;
        logger.info(start, `recommending for ${start.users} users with the ${start.model} model of run ${start.runId}`);
      },
    );
    logger.info({ ...summary }, `answered ${summary.users - summary.failed} of ${summary.users} users`);
  });
  if (complete && failed > 0) {
    throw new PartialFailureError(
      `${failed} of ${total} users could not be answered (${format === "jsonl" ? "each has an error field on its line" : "left out of the csv"}; the first ${Math.min(failed, WARN_ROWS)} are named above); the others were written`,
      { failed, total },
    );
  }
}

/** `ms predict --pairs FILE` as CSV or JSON lines: cold pairs (unknown user or movie) scored by the cold-start rule and marked. */
export async function streamPredictions(format: StreamFormat, o: PredictStreamOptions, logger: Logger): Promise<void> {
  let warned = 0;
  await streamed(logger, async (out) => {
    if (format === "csv") await out.line(PREDICT_CSV_HEADER.join(","));
    const summary = await predictStream(
      o,
      async (rows: PredictionRow[]) => {
        for (const row of rows) {
          if (row.cold && ++warned <= WARN_ROWS)
            logger.warn(row, `pair (${row.userId}, ${row.movieId}): no factors for its ${row.cold}; scored by the cold-start rule`);
          await out.line(format === "jsonl" ? JSON.stringify(row) : csvRecord([row.userId, row.movieId, row.rating, row.cold ?? null]));
        }
      },
      (start) => logger.info(start, `predicting with the ${start.model} model of run ${start.runId}`),
    );
    logger.info({ ...summary }, `predicted ${summary.pairs} pairs (${summary.cold} by the cold-start rule)`);
  });
}
