/**
 * The ranking step's work: for each evaluated user (those with a training rating and a relevant
 * test rating, at most `rank_eval_users` of them, chosen as @ms/rank chooses), every model of the
 * run scores every catalog movie the user has not rated in training; its top k are measured
 * against the user's relevant test movies with @ms/rank's metrics. Users go through in batches,
 * so a rating model predicts for many users in one call and the score buffer stays bounded.
 */
import { BadInputError, readManifest, type SplitSpec } from "@ms/contracts";
import { readRatingsColumns } from "@ms/etl";
import { RankingAccumulator, rankingMetricsRecord, TopKSelector, type RankingMetrics } from "@ms/rank";
import { rankingData, splitOfFactors, type RankingData } from "./data.js";
import type { ModelRanking } from "./artifact.js";
import { checkSignal } from "./signal.js";
import type { Scorer } from "./scorers.js";

/** Scores held at once: users per batch is this over the catalog size (64 MiB of float32). */
const SCORES_PER_BATCH = 1 << 24;

/** The data of a run's ranking evaluation, read from the etl and als entries. */
export async function loadRankingData(
  dirs: { ratings: string; factors: string },
  minRating: number,
): Promise<{ data: RankingData; split: SplitSpec }> {
  const [ratings, factors] = await Promise.all([readRatingsColumns(dirs.ratings), readManifest(dirs.factors, "factors")]);
  const split = splitOfFactors(factors.details, dirs.factors);
  const data = rankingData(ratings, split, minRating);
  if (data.userIds.length === 0)
    throw new BadInputError(
      `no user has both a training rating and a test rating${minRating > 0 ? ` of at least ${minRating} (rank_min_rating)` : ""}: nothing to rank`,
      { file: dirs.ratings },
    );
  return { data, split };
}

/** Sees one user's top list: the user's index in the data, movie ids best first, their scores, how many. */
export type Visit = (user: number, movieIds: Int32Array, scores: ArrayLike<number>, count: number) => void;

/** A model as the evaluation sees it: the top-k list of every user of the data, in user order. */
export interface Lister {
  /** The model's name in the metric names (`als`, `keras`, `fm`, `ranker`, `popularity`). */
  readonly model: string;
  /** Its lists are made on a worker thread: `measureAll` measures it beside the others. */
  readonly offThread?: boolean;
  lists(data: RankingData, k: number, visit: Visit, signal?: AbortSignal): Promise<void>;
  dispose(): void;
}

/** A model that scores the whole catalog, listed by @ms/rank's top-k selection (the user's training movies excluded). */
export function scoreLister(scorer: Scorer): Lister {
  return {
    model: scorer.model,
    async lists(data, k, visit, signal) {
      const n = data.itemIds.length;
      const selector = new TopKSelector(n, k, data.itemIds);
      const ids = new Int32Array(k);
      const perBatch = Math.max(1, Math.floor(SCORES_PER_BATCH / Math.max(1, n)));
      for (let start = 0; start < data.userIds.length; start += perBatch) {
        checkSignal(signal);
        const end = Math.min(data.userIds.length, start + perBatch);
        const scores = await scorer.score(data.userIds.subarray(start, end), signal);
        for (let u = start; u < end; u++) {
          const row = scores.subarray((u - start) * n, (u - start + 1) * n);
          const top = selector.select(row, data.seen.items.subarray(data.seen.offsets[u], data.seen.offsets[u + 1]));
          for (let r = 0; r < top.count; r++) ids[r] = data.itemIds[top.index[r]];
          visit(u, ids, top.score, top.count);
        }
      }
    },
    dispose: () => scorer.dispose(),
  };
}

/** One model's metrics over every evaluated user. */
export async function measure(lister: Lister, data: RankingData, k: number, signal?: AbortSignal): Promise<ModelRanking> {
  const started = performance.now();
  const trainCountOf = new Map<number, number>();
  for (let j = 0; j < data.itemIds.length; j++) trainCountOf.set(data.itemIds[j], data.trainCount[j]);
  const acc = new RankingAccumulator({ k, catalogSize: data.itemIds.length, trainCount: (id) => trainCountOf.get(id) ?? 0 });
  await lister.lists(
    data,
    k,
    (u, ids, _scores, count) => {
      acc.add(ids.subarray(0, count), new Set(data.relevant.items.subarray(data.relevant.offsets[u], data.relevant.offsets[u + 1])));
    },
    signal,
  );
  return { model: lister.model, ...finiteMetrics(acc.result()), seconds: (performance.now() - started) / 1000 };
}

/**
 * Every lister's metrics, in the listers' order: the off-thread ones started first and measured
 * beside the others, which run one after another on this thread (one score buffer at a time).
 * `onMeasured` is told of each as it ends. When one fails, the off-thread work is stopped.
 */
export async function measureAll(
  listers: readonly Lister[],
  data: RankingData,
  k: number,
  onMeasured: (m: ModelRanking) => void,
  signal?: AbortSignal,
): Promise<ModelRanking[]> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const run = (l: Lister) =>
    measure(l, data, k, stop.signal).then((m) => {
      onMeasured(m);
      return m;
    });
  const aside = listers.map((l) => (l.offThread ? run(l) : undefined));
  // A failure here must not leave an off-thread rejection unobserved.
  for (const p of aside) p?.catch(() => undefined);
  try {
    const here: (ModelRanking | undefined)[] = [];
    for (const l of listers) here.push(l.offThread ? undefined : await run(l));
    return await Promise.all(listers.map((_, i) => (here[i] ? here[i] : (aside[i] as Promise<ModelRanking>))));
  } catch (error) {
    stop.abort();
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

function finiteMetrics(m: RankingMetrics): Omit<ModelRanking, "model" | "seconds"> {
  const out = {
    ndcg: m.ndcg,
    precision: m.precision,
    recall: m.recall,
    map: m.map,
    hitRate: m.hitRate,
    coverage: m.coverage,
    popularityBias: m.popularityBias,
  };
  for (const [name, value] of Object.entries(out)) if (!Number.isFinite(value)) throw new Error(`ranking: ${name} is ${value}`);
  return out;
}

/** The flat metric names the step publishes: `<model>_<metric>_at_<k>` (@ms/rank's names), and `eval_users` once. */
export function metricsRecord(models: readonly ModelRanking[], k: number, users: number): Record<string, number> {
  const out: Record<string, number> = { eval_users: users };
  for (const m of models) {
    const record = rankingMetricsRecord({ ...m, k, users }, `${m.model}_`);
    delete record[`${m.model}_eval_users`];
    Object.assign(out, record);
  }
  return out;
}
