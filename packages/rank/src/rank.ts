/**
 * The rank step: reads the etl ratings, takes the training part of the split (the same spec and
 * seed as the als step, so the same ratings test), fits the ranking model (EASE or popularity),
 * measures it and the popularity baseline on the test part with the ranking metrics, and
 * publishes the "ranker" artifact through adapter.ts. Serving reads it back with `openRanker`.
 */
import {
  assertArtifactIntact,
  assertReplaceableOutput,
  BadInputError,
  BadParameterError,
  InterruptedError,
  KEYED_SPLITS,
  MsError,
  silentLogger,
  splitMaskOf,
  splitSpecOf,
  type ArtifactRef,
  type Manifest,
  type ManifestMetrics,
  type StepContext,
} from "@ms/contracts";
import path from "node:path";
import { ratingsSource, readRankerArtifact, readRatings, writeRankerArtifact, type RankerDetails } from "./adapter.js";
import { evaluateRanker, fitRanker, type FittedRanker } from "./fit.js";
import { rankingMetricsRecord } from "./metrics.js";
import type { RankParams } from "./params.js";
import { Ranker } from "./ranker.js";
import { SELECT_MAX_ITEMS, selectEase, type EaseSelection } from "./select.js";
import { RANK_VERSION } from "./version.js";

export interface RankResult {
  outputs: { ranker: ArtifactRef<"ranker"> };
  metrics: ManifestMetrics;
  manifest: Manifest<RankParams, ManifestMetrics, RankerDetails>;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

function checkInterrupted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof MsError ? reason : new InterruptedError("rank: interrupted");
}

/** A keyed split reads etl's split_key: it must have been written for that split. */
function refuseOtherSplitKey(kind: string, written: unknown, file: string): void {
  if (!(KEYED_SPLITS as readonly string[]).includes(kind) || written === undefined || written === kind) return;
  throw new BadParameterError(
    "split",
    `is ${kind}, but the ratings ${file} were written by etl with split=${String(written)}; rerun etl with -P split=${kind}`,
  );
}

/** The step's metrics: its model's and popularity's ranking metrics, and what the fit took. */
function stepMetrics(
  fitted: FittedRanker,
  own: Ranker,
  ratings: Parameters<typeof evaluateRanker>[1],
  mask: Uint8Array,
  params: RankParams,
) {
  const options = { k: params.rank_k, minRating: params.rank_min_rating, maxUsers: params.rank_eval_users, seed: params.rank_seed };
  const mine = evaluateRanker(own, ratings, mask, fitted.train, options);
  const popular =
    params.rank_model === "popularity"
      ? mine
      : evaluateRanker(new Ranker({ ...fitted.model, model: "popularity" }), ratings, mask, fitted.train, options);
  const s = fitted.seconds;
  return {
    ...rankingMetricsRecord(mine),
    ...rankingMetricsRecord(popular, "popularity_"),
    train_rows: fitted.trainRows,
    items: fitted.model.itemIds.length,
    model_items: fitted.model.modelItems?.length ?? 0,
    gram_seconds: s.gram,
    inverse_seconds: s.inverse,
    prune_seconds: s.prune,
    fit_seconds: s.gram + s.inverse + s.prune,
  };
}

/**
 * λ and β for the fit: the numbers given, or with `auto` the selection's choice (select.ts) on
 * held-out training rows. Popularity has neither (0 recorded for an `auto` one).
 */
async function chooseEase(
  ratings: Parameters<typeof selectEase>[0],
  mask: Uint8Array,
  params: RankParams,
  signal?: AbortSignal,
): Promise<{ lambda: number; penalty: number; selection?: EaseSelection }> {
  const { rank_lambda: lambda, rank_popularity_penalty: penalty } = params;
  const auto = lambda === "auto" || penalty === "auto";
  if (params.rank_model !== "ease" || !auto) return { lambda: lambda === "auto" ? 0 : lambda, penalty: penalty === "auto" ? 0 : penalty };
  const selection = await selectEase(
    ratings,
    mask,
    {
      lambda,
      penalty,
      maxItems: params.rank_max_items,
      neighbors: params.rank_neighbors,
      k: params.rank_k,
      minRating: params.rank_min_rating,
      maxUsers: params.rank_eval_users,
      seed: params.rank_seed,
      threads: params.rank_num_threads,
    },
    signal,
  );
  return { lambda: selection.lambda, penalty: selection.penalty, selection };
}

/** The selection's metrics: the chosen λ/β and their validation scores beside popularity's. */
function selectionMetrics(s: EaseSelection | undefined, k: number): Record<string, number> {
  if (!s) return {};
  const chosen = s.chosen >= 0 ? s.trials[s.chosen] : undefined;
  const popular = s.trials.find((t) => t.model === "popularity");
  return {
    [`rank_validation_ndcg_at_${k}`]: chosen?.ndcg ?? 0,
    [`rank_validation_coverage_at_${k}`]: chosen?.coverage ?? 0,
    [`rank_validation_popularity_ndcg_at_${k}`]: popular?.ndcg ?? 0,
    rank_validation_best_ndcg: Math.max(...s.trials.map((t) => t.ndcg)),
    rank_validation_users: s.users,
    rank_popularity_best: s.popularityBest ? 1 : 0,
    select_seconds: s.seconds,
  };
}

/** The selection as the manifest records it (scores rounded: they are for reading). */
function selectionDetails(s: EaseSelection): NonNullable<RankerDetails["selection"]> {
  return {
    rule: `half-standard-error: of the EASE candidates within half a paired standard error of the best validation nDCG, the largest coverage; trials over at most ${SELECT_MAX_ITEMS} items, the refit over rank_max_items`,
    fitRows: s.fitRows,
    validationRows: s.validationRows,
    users: s.users,
    chosen: s.chosen,
    popularityBest: s.popularityBest,
    trials: s.trials.map((t) => ({ ...t, ndcg: round(t.ndcg, 5), coverage: round(t.coverage, 5), se: round(t.se, 5) })),
  };
}

function logSelection(logger: ReturnType<typeof silentLogger>, s: EaseSelection): void {
  const chosen = s.chosen >= 0 ? s.trials[s.chosen] : undefined;
  const popular = s.trials.find((t) => t.model === "popularity");
  logger.info(
    {
      lambda: s.lambda,
      penalty: s.penalty,
      validation_ndcg: round(chosen?.ndcg ?? 0, 4),
      best_ndcg: round(Math.max(...s.trials.map((t) => t.ndcg)), 4),
      popularity_ndcg: round(popular?.ndcg ?? 0, 4),
      candidates: s.trials.length,
      users: s.users,
      seconds: round(s.seconds),
    },
    s.chosen < 0
      ? "rank: auto λ/β: no user to validate on, the former defaults taken"
      : s.popularityBest
        ? "rank: auto λ/β chosen on held-out training rows; popularity beat every EASE candidate there (-P rank_model=popularity serves it)"
        : "rank: auto λ/β chosen on held-out training rows",
  );
}

/** Runs the rank step into `outDir` (created, or replacing an earlier ranker output); `params` are resolved (`resolveRankParams`). */
export async function rank(
  inputs: { ratings: string },
  params: RankParams,
  outDir: string,
  ctx: Partial<StepContext> = {},
): Promise<RankResult> {
  const logger = ctx.logger ?? silentLogger();
  const started = performance.now();
  const target = path.resolve(outDir);
  await assertReplaceableOutput(target, "ranker");
  if (!ctx.inputsVerified) await assertArtifactIntact(inputs.ratings, "ratings");
  const source = await ratingsSource(inputs.ratings);
  const ratings = await readRatings(inputs.ratings);
  checkInterrupted(ctx.signal);
  const split = splitSpecOf(params, params.rank_seed);
  refuseOtherSplitKey(split.kind ?? "hash", source.writtenSplit, source.file);
  const mask = splitMaskOf(split, ratings);
  let trainRows = 0;
  for (let i = 0; i < mask.length; i++) trainRows += mask[i];
  if (trainRows === 0)
    throw new BadInputError(`none of the ${ratings.rows} ratings falls in the training split (split_prop ${params.split_prop})`, {
      file: source.file,
    });
  logger.info({ rows: ratings.rows, train: trainRows, model: params.rank_model, status: "fitting" }, "rank: ratings loaded");
  const { lambda, penalty, selection } = await chooseEase(ratings, mask, params, ctx.signal);
  if (selection) logSelection(logger, selection);
  checkInterrupted(ctx.signal);
  const fitted = fitRanker(ratings, mask, {
    model: params.rank_model,
    lambda,
    maxItems: params.rank_max_items,
    neighbors: params.rank_neighbors,
    popularityPenalty: penalty,
  });
  checkInterrupted(ctx.signal);
  const own = new Ranker(fitted.model);
  const metrics: ManifestMetrics = {
    ...stepMetrics(fitted, own, ratings, mask, params),
    ...(params.rank_model === "ease" ? { rank_lambda_chosen: lambda, rank_penalty_chosen: penalty } : {}),
    ...selectionMetrics(selection, params.rank_k),
  };
  metrics.seconds = (performance.now() - started) / 1000;
  checkInterrupted(ctx.signal);
  const details: RankerDetails = {
    model: params.rank_model,
    items: fitted.model.itemIds.length,
    modelItems: fitted.model.modelItems?.length ?? 0,
    entries: fitted.model.rows?.cols.length ?? 0,
    lambda,
    neighbors: params.rank_neighbors,
    popularityPenalty: penalty,
    trainRows: fitted.trainRows,
    split,
    ratings: { digest: source.digest, rows: ratings.rows },
    seconds: selection ? { ...fitted.seconds, select: selection.seconds } : fitted.seconds,
    ...(selection ? { selection: selectionDetails(selection) } : {}),
  };
  const manifest = await writeRankerArtifact(target, {
    model: fitted.model,
    details,
    params,
    metrics,
    producedBy: { step: "rank", version: RANK_VERSION },
  });
  for (const [key, value] of Object.entries(metrics)) if (typeof value === "number") ctx.metrics?.metric(key, value);
  const k = params.rank_k;
  logger.info(
    {
      [`ndcg_at_${k}`]: round(Number(metrics[`ndcg_at_${k}`]), 4),
      [`popularity_ndcg_at_${k}`]: round(Number(metrics[`popularity_ndcg_at_${k}`]), 4),
      seconds: round(Number(metrics.seconds)),
    },
    "rank: done",
  );
  return { outputs: { ranker: { kind: "ranker", dir: target, digest: manifest.digest } }, metrics, manifest };
}

/** Opens a ranker artifact for serving (see Ranker: recommend, recommendAll). */
export async function openRanker(
  dir: string,
): Promise<Ranker & { manifest: Manifest<Record<string, unknown>, ManifestMetrics, RankerDetails> }> {
  const artifact = await readRankerArtifact(dir);
  return Object.assign(new Ranker(artifact.model), { manifest: artifact.manifest });
}
