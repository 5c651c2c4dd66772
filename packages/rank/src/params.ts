/**
 * The rank step's parameter schema: the one place each parameter is declared, under its one `-P`
 * name. The model and its settings (`rank_model`, `rank_lambda`, `rank_max_items`,
 * `rank_neighbors`); the evaluation parameters every ranking evaluation shares, exported as
 * `rankingParams` for other steps to spread into theirs (`rank_k`, `rank_min_rating`,
 * `rank_eval_users`); and the split (@ms/contracts' `split`, `split_prop`, `folds`, `fold`, and
 * `rank_seed`, which defaults to the als step's `seed`: the same ratings train and test in both).
 *
 * The defaults are measured (tools/bench/results/2026-12-07-rank.md): λ and β are `auto` (chosen
 * on held-out training rows by select.ts) because no fixed pair won on both ml-latest-small and
 * the synthetic kinds; the item cap so a fit of ml-latest-small takes seconds and 20M synthetic
 * ratings a few minutes; the kept neighbours so nDCG@10 barely moves.
 */
import { availableParallelism } from "node:os";
import {
  BadParameterError,
  checkSplitParams,
  param,
  paramResolver,
  pickSplitParams,
  type ParamDef,
  type ParamDefs,
  type SplitParams,
} from "@ms/contracts";

export const RANK_MODELS = ["ease", "popularity"] as const;

/** What every ranking evaluation reads (spread into a step's params as `...rankingParams`). */
export interface RankingParams {
  rank_k: number;
  rank_min_rating: number;
  rank_eval_users: number;
  rank_num_threads: number;
}

export interface RankParams extends RankingParams, Omit<SplitParams, "test_ratings"> {
  rank_model: (typeof RANK_MODELS)[number];
  rank_lambda: number | "auto";
  rank_max_items: number;
  rank_neighbors: number;
  rank_popularity_penalty: number | "auto";
  rank_seed: number;
}

export const RANK_DEFAULTS = {
  rank_model: "ease",
  rank_lambda: "auto",
  rank_max_items: 1500,
  rank_neighbors: 0,
  rank_popularity_penalty: "auto",
  rank_k: 10,
  rank_min_rating: 0,
  rank_eval_users: 2000,
  rank_seed: 42,
} as const satisfies Partial<RankParams>;

/** Most items EASE inverts: 12,000^2 doubles is 1.15 GB, and the inverse ~20 minutes here. */
export const MAX_MODEL_ITEMS = 12_000;

/**
 * A number in a range, or `auto` (the data decides: select.ts). Why not a choice: the number stays
 * a number in the params (and so in the cache key) exactly as before `auto` existed.
 */
function numberOrAuto(o: Omit<Parameters<typeof param.number>[0], "default"> & { default: number | "auto" }): ParamDef<number | "auto"> {
  const n = param.number({ ...o, default: undefined });
  const isAuto = (x: unknown) => typeof x === "string" && x.trim().toLowerCase() === "auto";
  return {
    ...n,
    default: o.default,
    check: (value, name) => (isAuto(value) ? "auto" : n.check(value, name)),
    parse(text, name) {
      if (isAuto(text)) return "auto";
      const x = Number(text.trim());
      if (text.trim() === "" || !Number.isFinite(x)) throw new BadParameterError(name, `"${text}" is not a number or auto`);
      return n.check(x, name);
    },
  };
}

export const rankingParams: ParamDefs<RankingParams> = {
  rank_k: param.integer({
    default: RANK_DEFAULTS.rank_k,
    min: 1,
    max: 1000,
    doc: "list length of the ranking metrics (precision@k, nDCG@k, ...)",
  }),
  rank_min_rating: param.number({
    default: RANK_DEFAULTS.rank_min_rating,
    min: 0,
    doc: "ranking metrics: a test item is relevant when its rating is at least this (0: every test item, as Microsoft Recommenders)",
  }),
  rank_eval_users: param.integer({
    default: RANK_DEFAULTS.rank_eval_users,
    min: 1,
    doc: "ranking metrics: the most users evaluated (chosen by a hash of the user id, so the same users every time); each rating model scores users x catalogue pairs, so 2,000 keeps a 20M-rating release to minutes while ml-latest-small (610 users) is evaluated in full",
  }),
  rank_num_threads: param.integer({
    default: Math.min(availableParallelism(), 256),
    min: 1,
    max: 256,
    defaultDoc: "the number of cores",
    doc: "worker threads: the rank step fits auto's λ candidates side by side (each holding one m x m copy), the ranking step scores the keras network beside the other models",
    notInKey:
      "the λ candidates' fits and every model's lists are the same on any thread (@ms/rank's select.test.ts and the driver's ranking.test.ts compare one thread with two)",
  }),
};

export const rankParams: ParamDefs<RankParams> = {
  rank_model: param.choice(RANK_MODELS, {
    default: RANK_DEFAULTS.rank_model,
    doc: "the ranking model: ease (Steck 2019's closed-form item-item model) or popularity (most training ratings first)",
  }),
  rank_lambda: numberOrAuto({
    default: RANK_DEFAULTS.rank_lambda,
    min: 0,
    minExclusive: true,
    doc: "ease: the L2 penalty λ added to X^T X's diagonal; auto: chosen from 100..3200 on held-out training rows (see the README)",
  }),
  rank_max_items: param.integer({
    default: RANK_DEFAULTS.rank_max_items,
    min: 2,
    max: MAX_MODEL_ITEMS,
    doc: "ease: the most-rated training items the model covers (an m x m inverse); others are never recommended. auto's λ/β trials use at most 1000 of them",
  }),
  rank_neighbors: param.integer({
    default: RANK_DEFAULTS.rank_neighbors,
    min: 0,
    doc: "ease: entries of B kept per item (largest magnitude), for serving speed; 0 keeps all (pruning costs nDCG: see the bench)",
  }),
  rank_popularity_penalty: numberOrAuto({
    default: RANK_DEFAULTS.rank_popularity_penalty,
    min: 0,
    max: 2,
    doc: "ease: β, each item's scores divided by its training count^β; > 0 trades nDCG for catalog coverage; auto: chosen from 0..0.3 with λ on held-out training rows (see the README)",
  }),
  ...rankingParams,
  ...pickSplitParams("split", "split_prop", "folds", "fold"),
  rank_seed: param.integer({
    default: RANK_DEFAULTS.rank_seed,
    defaultFrom: "seed",
    defaultDoc: "the value of seed",
    doc: "the train/test split's seed (as the als step's seed, so the same ratings test) and the evaluated users' hash",
  }),
};

/** The split's cross checks (a fold with split=kfold). */
export function completeRankParams(p: RankParams): RankParams {
  return checkSplitParams(p);
}

/** Checks and completes the rank step's parameters: the step, its bin and library callers resolve through it. */
export const resolveRankParams = paramResolver(rankParams, completeRankParams);
