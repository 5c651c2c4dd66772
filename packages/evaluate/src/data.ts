/**
 * What the ranking metrics are computed over, from the etl ratings and the split the ALS factors
 * were fitted with (every model of a run trains on that split's training part): the catalog (the
 * movies with a training rating, the only ones a model can rank), each movie's training count,
 * and per user the training movies (removed from the candidates) and the relevant test movies.
 */
import path from "node:path";
import * as v from "valibot";
import { binarySearch, checkJson, positionLookup, splitHash, splitMaskOf, SplitSpecSchema, type SplitSpec } from "@ms/contracts";
import type { RatingsColumns } from "@ms/etl";
import { sampleUsers } from "@ms/rank";

/** The split an ALS factors entry records (older manifests: the hash split of seed and splitProp). */
const SplitDetails = v.object({ seed: v.number(), splitProp: v.number(), split: v.optional(SplitSpecSchema) });

/** The split of a factors manifest's details, checked (the file is named in the error). */
export function splitOfFactors(details: unknown, factorsDir: string): SplitSpec {
  const d = checkJson(details, SplitDetails, `${path.join(factorsDir, "manifest.json")}: details`);
  return d.split ?? { kind: "hash", seed: d.seed, splitProp: d.splitProp };
}

/** Per-user lists in one flat array: user u's are `items[offsets[u] .. offsets[u + 1])`. */
export interface UserLists {
  offsets: Int32Array;
  items: Int32Array;
}

export interface RankingData {
  /** The catalog: sorted ids of the movies with at least one training rating. */
  itemIds: Int32Array;
  /** Training ratings of each catalog movie (index as in itemIds). */
  trainCount: Int32Array;
  /** Sorted ids of the users with a training rating and a relevant test rating. */
  userIds: Int32Array;
  /** Sorted ids of the users with a relevant test rating, trained or not (what @ms/rank samples from). */
  testUserIds: Int32Array;
  /** Each user's training movies, as catalog indices (sorted). */
  seen: UserLists;
  /** Each user's relevant test movies, as movie ids (sorted; a movie outside the catalog counts, though no model can rank it). */
  relevant: UserLists;
  /** Each user's training ratings as (catalog index, rating), for the report's "their own highest-rated movies". */
  seenRatings: Float32Array;
  trainRows: number;
  testRows: number;
}

/**
 * The rows of each user, sorted by `keyOf` within the user, in one flat array (offsets as UserLists):
 * a counting sort by user, then a sort of each user's few rows.
 */
function groupRows(users: number, rows: readonly number[], userOf: (row: number) => number, keyOf: (row: number) => number): UserLists {
  const offsets = new Int32Array(users + 1);
  for (const r of rows) offsets[userOf(r) + 1]++;
  for (let u = 0; u < users; u++) offsets[u + 1] += offsets[u];
  const fill = offsets.slice(0, users);
  const grouped = new Int32Array(rows.length);
  for (const r of rows) grouped[fill[userOf(r)]++] = r;
  for (let u = 0; u < users; u++) grouped.subarray(offsets[u], offsets[u + 1]).sort((a, b) => keyOf(a) - keyOf(b));
  return { offsets, items: grouped };
}

/** Sorted distinct values of `ids` at the rows `mask` selects. */
function distinct(ids: Int32Array, keep: (row: number) => boolean): Int32Array {
  const set = new Set<number>();
  for (let i = 0; i < ids.length; i++) if (keep(i)) set.add(ids[i]);
  return Int32Array.from(set).sort();
}

/**
 * The catalog, the evaluated users and their lists. A test rating is relevant when it is at least
 * `minRating` (0: every test rating, Microsoft Recommenders' rule); the users evaluated are those
 * with a training rating (the models know them) and a relevant test rating.
 */
export function rankingData(ratings: RatingsColumns, split: SplitSpec, minRating: number): RankingData {
  const mask = splitMaskOf(split, ratings);
  const n = ratings.rows;
  const itemIds = distinct(ratings.movieIds, (i) => mask[i] === 1);
  const trainUsers = distinct(ratings.userIds, (i) => mask[i] === 1);
  const testUserIds = distinct(ratings.userIds, (i) => mask[i] === 0 && ratings.ratings[i] >= minRating);
  const userIds = testUserIds.filter((id) => binarySearch(trainUsers, id) >= 0);
  const trainCount = new Int32Array(itemIds.length);
  const trainRows: number[] = [];
  const relevantRows: number[] = [];
  // Each row's user and catalog index, searched once (-1: not evaluated / not in the catalog).
  const rowUser = new Int32Array(n);
  const rowItem = new Int32Array(n);
  let testRows = 0;
  const itemAt = positionLookup(itemIds);
  const userAt = positionLookup(userIds);
  for (let i = 0; i < n; i++) {
    rowItem[i] = itemAt(ratings.movieIds[i]);
    if (mask[i] === 1) trainCount[rowItem[i]]++;
    else testRows++;
    rowUser[i] = userAt(ratings.userIds[i]);
    if (rowUser[i] < 0) continue;
    if (mask[i] === 1) trainRows.push(i);
    else if (ratings.ratings[i] >= minRating) relevantRows.push(i);
  }
  const userOf = (r: number) => rowUser[r];
  const itemOf = (r: number) => rowItem[r];
  const seenRows = groupRows(userIds.length, trainRows, userOf, itemOf);
  const relevantGrouped = groupRows(userIds.length, relevantRows, userOf, (r) => ratings.movieIds[r]);
  const seen = { offsets: seenRows.offsets, items: seenRows.items.map(itemOf) };
  const relevant = { offsets: relevantGrouped.offsets, items: relevantGrouped.items.map((r) => ratings.movieIds[r]) };
  const seenRatings = Float32Array.from(seenRows.items, (r) => ratings.ratings[r]);
  return { itemIds, trainCount, userIds, testUserIds, seen, relevant, seenRatings, trainRows: n - testRows, testRows };
}

/** Keeps the users at the given (sorted) indices of `data.userIds`: the evaluation sample. */
export function keepUsers(data: RankingData, keep: Int32Array): RankingData {
  const pick = (lists: UserLists, values?: Float32Array) => {
    const offsets = new Int32Array(keep.length + 1);
    for (let k = 0; k < keep.length; k++) offsets[k + 1] = offsets[k] + lists.offsets[keep[k] + 1] - lists.offsets[keep[k]];
    const items = new Int32Array(offsets[keep.length]);
    const picked = new Float32Array(offsets[keep.length]);
    for (let k = 0; k < keep.length; k++) {
      const from = lists.offsets[keep[k]];
      const to = lists.offsets[keep[k] + 1];
      items.set(lists.items.subarray(from, to), offsets[k]);
      if (values) picked.set(values.subarray(from, to), offsets[k]);
    }
    return { lists: { offsets, items }, picked };
  };
  const seen = pick(data.seen, data.seenRatings);
  return {
    ...data,
    userIds: Int32Array.from(keep, (u) => data.userIds[u]),
    seen: seen.lists,
    seenRatings: seen.picked,
    relevant: pick(data.relevant).lists,
  };
}

/**
 * The evaluated users: at most `cap`, chosen as @ms/rank's own evaluation chooses them (the users
 * with a relevant test rating whose id hashes lowest under the split's seed, the same users every
 * run), less those without a training rating, whom no rating model can score.
 */
export function evaluatedUsers(data: RankingData, cap: number, seed: number): RankingData {
  if (data.testUserIds.length <= cap) return data;
  const chosen = sampleUsers(data.testUserIds, cap, (id) => splitHash(id, 0, seed));
  const keep: number[] = [];
  for (const id of chosen) {
    const u = binarySearch(data.userIds, id);
    if (u >= 0) keep.push(u);
  }
  return keepUsers(data, Int32Array.from(keep));
}
