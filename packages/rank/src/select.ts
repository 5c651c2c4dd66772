/**
 * `auto` for EASE's λ (`rank_lambda`) and popularity penalty β (`rank_popularity_penalty`): the
 * data chooses, on held-out rows of the training part, as @ms/fm chooses its feature groups. Why:
 * no fixed pair won everywhere (tools/bench/results/2026-12-07-rank.md): ml-latest-small is best
 * at λ = 200 with β = 0.1-0.2 (and wider coverage), the synthetic kinds, where which movies a
 * user rates is drawn from popularity, at λ = 800 and above with β = 0.
 *
 * 1. The training part is split once: each user with at least MIN_HISTORY training items gives
 *    the VALIDATION_SHARE of them with the smallest splitHash(user, movie, mixSeed(seed, salt))
 *    to validation (a per-user share, so every such user is scored; a salted seed, so the cut is
 *    independent of the test split's own hash); the rest is the fit part.
 * 2. EASE is fitted on the fit part once per λ of the grid (one gram matrix, one m x m inverse
 *    per λ, over at most SELECT_MAX_ITEMS items: six inverses at the model's own cap would cost
 *    more than the rest of the step), each B scored with every β of its grid (a column scale of
 *    every user's scores: no refit, one scoring pass per user and λ), and popularity
 *    scored too: nDCG@k of the step's own evaluation (fit-part items excluded, at most
 *    `rank_eval_users` users by the same hash), coverage beside it.
 * 3. The choice, a half-standard-error rule: the candidates whose validation nDCG is within half a
 *    standard error of the best candidate's are taken as good as it, and of those the EASE
 *    candidate with the largest catalog coverage is taken (ties: higher nDCG, then the grid's
 *    order). The standard error is that of the per-user difference between a candidate and the
 *    best (a paired comparison: every candidate ranks the same users, and the spread of the
 *    users' own difficulty, common to all, is not noise between them). Why half, not the usual
 *    one: a whole standard error traded 0.003 of test nDCG on ml-latest-small for coverage, and
 *    left the default level with a plain EASE (λ 500) instead of ahead of it
 *    (tools/bench/results/2026-12-08-ranking-choice.md).
 * 4. Popularity is a candidate but never the result: when it wins outright (no EASE candidate
 *    within half a standard error), the EASE candidate with the best validation nDCG is kept — the
 *    one closest to popularity, as B at large λ tends to a popularity-like score — and the trial
 *    says so (`popularityBest`). Why not switch the model: `rank_model` is the caller's choice,
 *    and an EASE artifact keeps its per-user lists and reasons; `-P rank_model=popularity` is one
 *    flag away, and the log line names it.
 *
 * The step then refits the chosen λ on the whole training part, over its own `rank_max_items`.
 * Every step is a function of the ratings and the seed, so the choice repeats exactly.
 */
import { mixSeed, splitHash } from "@ms/contracts";
import { groupByUser, sampleUsers } from "./data.js";
import { gramMatrix } from "./ease.js";
import { evaluationOf, modelIndex, popularityScale, scoreLists, trainingPart, type RatingColumns } from "./fit.js";
import { easeFits } from "./parallel.js";
import { Ranker, type BatchRecommendation } from "./ranker.js";

/** The λ tried (log-spaced around the former default 400; each is one m x m inverse). */
export const AUTO_LAMBDAS: readonly number[] = [100, 200, 400, 800, 1600, 3200];
/** The β tried (past 0.3 ml-latest-small lost nDCG beyond its folds' spread: the bench). */
export const AUTO_PENALTIES: readonly number[] = [0, 0.1, 0.2, 0.3];
/**
 * The trials' item cap (the most-rated items, as the model's): the chosen λ and β carry over to
 * the step's refit over its larger `rank_max_items` (1500 by default), which ranked better on
 * held-out data than a refit at the trials' size (the bench above).
 */
export const SELECT_MAX_ITEMS = 1000;
/** A candidate within this many paired standard errors of the best counts as level with it. */
export const SE_MARGIN = 0.5;
/** The share of a user's training items held out for validation. */
export const VALIDATION_SHARE = 0.2;
/** Fewer training items than this: the user's items all stay in the fit part (a fifth of 4 is none). */
export const MIN_HISTORY = 5;
/** What `auto` takes when no user can be validated (too little data): the former fixed defaults. */
export const AUTO_FALLBACK = { lambda: 400, penalty: 0 } as const;
const VALIDATION_SALT = 0x5e1ec7;

export interface SelectOptions {
  lambda: number | "auto";
  penalty: number | "auto";
  maxItems: number;
  neighbors: number;
  k: number;
  minRating: number;
  maxUsers: number;
  seed: number;
  /** Worker threads for the λ fits (default 1: this thread); the choice is the same for any count. */
  threads?: number;
}

/** One candidate's validation scores. */
export interface EaseTrial {
  model: "ease" | "popularity";
  /** 0 for popularity. */
  lambda: number;
  penalty: number;
  ndcg: number;
  coverage: number;
  /** Standard error of the per-user nDCG difference from the best candidate (0 for the best). */
  se: number;
}

export interface EaseSelection {
  lambda: number;
  penalty: number;
  trials: EaseTrial[];
  /** The chosen trial's index in `trials` (-1: no user to validate on, the fallback taken). */
  chosen: number;
  /** Popularity had the best validation nDCG with no EASE candidate within SE_MARGIN standard errors. */
  popularityBest: boolean;
  fitRows: number;
  validationRows: number;
  /** Users scored on the validation part. */
  users: number;
  seconds: number;
}

/**
 * The training part's rows (mask 1) as their own columns, and the fit/validation cut over them
 * (1: fit, 0: validation), as step 1 of the module's docblock says. Only the users the evaluation
 * will score give validation rows: of those with at least MIN_HISTORY training items, at most
 * `maxUsers`, chosen by the evaluation's own hash of the user id (evaluationOf's sampleUsers rule);
 * everyone else's items all stay in the fit part. Below `maxUsers` eligible users that is every
 * one of them; above it (a 20M-rating release) the fit part keeps nearly all the training part,
 * and the cut costs a sort of the scored users' rows only.
 */
export function validationSplit(
  cols: RatingColumns,
  mask: Uint8Array,
  seed: number,
  maxUsers = Number.POSITIVE_INFINITY,
): { part: RatingColumns; fitMask: Uint8Array } {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  const part: RatingColumns = { userIds: new Int32Array(n), movieIds: new Int32Array(n), ratings: new Float32Array(n) };
  for (let i = 0, at = 0; i < mask.length; i++)
    if (mask[i] === 1) {
      part.userIds[at] = cols.userIds[i];
      part.movieIds[at] = cols.movieIds[i];
      part.ratings[at++] = cols.ratings[i];
    }
  const salted = mixSeed(seed, VALIDATION_SALT);
  const byUser = groupByUser(
    part.userIds,
    () => true,
    (i) => i,
  );
  const eligible = byUser.userIds.filter((_, u) => byUser.offsets[u + 1] - byUser.offsets[u] >= MIN_HISTORY);
  const scored = new Set(sampleUsers(eligible, maxUsers, (id) => splitHash(id, 0, seed)));
  const fitMask = new Uint8Array(n).fill(1);
  for (let u = 0; u + 1 < byUser.offsets.length; u++) {
    if (!scored.has(byUser.userIds[u])) continue;
    const rows = byUser.items.slice(byUser.offsets[u], byUser.offsets[u + 1]);
    const hash = Float64Array.from(rows, (i) => splitHash(part.userIds[i], part.movieIds[i], salted));
    const order = Array.from(rows.keys()).sort(
      (a, b) => hash[a] - hash[b] || part.movieIds[rows[a]] - part.movieIds[rows[b]] || rows[a] - rows[b],
    );
    const held = Math.floor(rows.length * VALIDATION_SHARE);
    for (let r = 0; r < held; r++) fitMask[rows[order[r]]] = 0;
  }
  return { part, fitMask };
}

/** Standard error of the mean of a - b over users (paired). */
function pairedSe(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  if (n < 2) return 0;
  let sum = 0;
  let sumSq = 0;
  for (let u = 0; u < n; u++) {
    const d = a[u] - b[u];
    sum += d;
    sumSq += d * d;
  }
  const mean = sum / n;
  return Math.sqrt(Math.max(0, (sumSq - n * mean * mean) / (n - 1)) / n);
}

/**
 * Chooses λ and β as the module's docblock says; a number given for either is kept and only the
 * other is searched. The λ fits run on up to `threads` worker threads (parallel.ts's `easeFits`),
 * each scored here as it ends; the trials keep the grid's order, so the choice is the same for any
 * thread count.
 */
export async function selectEase(cols: RatingColumns, mask: Uint8Array, o: SelectOptions, signal?: AbortSignal): Promise<EaseSelection> {
  const started = performance.now();
  const lambdas = o.lambda === "auto" ? AUTO_LAMBDAS : [o.lambda];
  const penalties = o.penalty === "auto" ? AUTO_PENALTIES : [o.penalty];
  const { part, fitMask } = validationSplit(cols, mask, o.seed, o.maxUsers);
  let fitRows = 0;
  for (let i = 0; i < fitMask.length; i++) fitRows += fitMask[i];
  const { itemIds, trainCounts, train } = trainingPart(part, fitMask);
  const evaluation = evaluationOf(part, fitMask, train, { minRating: o.minRating, maxUsers: o.maxUsers, seed: o.seed });
  const { modelItems, local, ids } = modelIndex(trainCounts, itemIds, Math.min(o.maxItems, SELECT_MAX_ITEMS));
  const gram = gramMatrix(train, local, modelItems.length);

  // Trial t = (λ index) * |penalties| + (β index); popularity last.
  const trials: EaseTrial[] = [];
  const perUser: Float64Array[] = [];
  const score = (t: number, ranker: Ranker, lists: BatchRecommendation, trial: Omit<EaseTrial, "ndcg" | "coverage" | "se">) => {
    const s = scoreLists(ranker, evaluation, lists, o.k);
    trials[t] = { ...trial, ndcg: s.metrics.ndcg, coverage: s.metrics.coverage, se: 0 };
    perUser[t] = s.userNdcg;
  };
  // Every β of one λ from one scoring pass: a β scales B's columns, so it scales each user's scores.
  const scales = penalties.map((beta) => popularityScale(modelItems, trainCounts, beta));
  await easeFits(
    gram,
    modelItems.length,
    lambdas,
    o.neighbors,
    ids,
    (l, fit) => {
      const lambda = lambdas[l];
      const ranker = new Ranker({ model: "ease", itemIds, trainCounts, modelItems, rows: fit.rows });
      const lists = ranker.recommendAllScaled(evaluation.histories, o.k, scales);
      penalties.forEach((penalty, s) => score(l * penalties.length + s, ranker, lists[s], { model: "ease", lambda, penalty }));
    },
    o.threads ?? 1,
    signal,
  );
  const popularity = new Ranker({ model: "popularity", itemIds, trainCounts });
  score(trials.length, popularity, popularity.recommendAll(evaluation.histories, o.k), { model: "popularity", lambda: 0, penalty: 0 });

  const users = perUser[0].length;
  const base = { trials, fitRows, validationRows: fitMask.length - fitRows, users };
  const seconds = () => (performance.now() - started) / 1000;
  if (users === 0) return { ...base, ...AUTO_FALLBACK, chosen: -1, popularityBest: false, seconds: seconds() };
  const { chosen, popularityBest } = chooseTrial(trials, perUser);
  return { ...base, lambda: trials[chosen].lambda, penalty: trials[chosen].penalty, chosen, popularityBest, seconds: seconds() };
}

/**
 * The choice over scored trials (fills each trial's `se`): the best by nDCG (ties: the earlier),
 * then of the EASE trials within SE_MARGIN paired standard errors of it the one of largest
 * coverage (ties: higher nDCG, then the earlier); when none is within, the best EASE trial.
 */
export function chooseTrial(trials: EaseTrial[], perUser: Float64Array[]): { chosen: number; popularityBest: boolean } {
  let best = 0;
  for (let t = 1; t < trials.length; t++) if (trials[t].ndcg > trials[best].ndcg) best = t;
  for (let t = 0; t < trials.length; t++) trials[t].se = t === best ? 0 : pairedSe(perUser[t], perUser[best]);
  const ease = trials.map((_, t) => t).filter((t) => trials[t].model === "ease");
  const within = ease.filter((t) => trials[t].ndcg >= trials[best].ndcg - SE_MARGIN * trials[t].se);
  const pick = (pool: number[], better: (a: number, b: number) => boolean) => pool.reduce((c, t) => (better(t, c) ? t : c), pool[0]);
  if (within.length === 0) return { chosen: pick(ease, (a, b) => trials[a].ndcg > trials[b].ndcg), popularityBest: true };
  const wider = (a: number, b: number) =>
    trials[a].coverage > trials[b].coverage || (trials[a].coverage === trials[b].coverage && trials[a].ndcg > trials[b].ndcg);
  return { chosen: pick(within, wider), popularityBest: false };
}
