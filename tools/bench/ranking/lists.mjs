/**
 * The ranking bench's lists and metrics. Every model, the pipeline's and the peers', ends as one
 * top-k list per evaluated user; `listMetrics` scores all of them with @ms/rank's one metrics
 * function (`rankingMetrics`: Microsoft Recommenders' definitions, binary relevance = every test
 * item of the user), so the figures compare. The evaluated users are the test users with at least
 * one training rating (a user the training part never saw has no history to rank from; every
 * model gets the same users). Lists exclude the user's training items; ties go to the smaller id
 * (@ms/rank's TopKSelector for the models scored here; peers.py does the same in numpy).
 */
import { binarySearch } from "@ms/contracts";
import { Ranker, rankingMetrics, TopKSelector, trainingItems } from "@ms/rank";

/** Each user's items, ascending, as a Map from user id to Int32Array. */
export function itemsByUser(rows) {
  const grouped = new Map();
  for (let i = 0; i < rows.users.length; i++) {
    const list = grouped.get(rows.users[i]);
    if (list) list.push(rows.items[i]);
    else grouped.set(rows.users[i], [rows.items[i]]);
  }
  const out = new Map();
  for (const [u, items] of grouped) out.set(u, Int32Array.from(items).sort());
  return out;
}

/** What every model is scored against: the evaluated users, their histories and test items, the catalog. */
export function evaluationOf(split) {
  const history = itemsByUser(split.train);
  const testItems = itemsByUser(split.test);
  const users = Int32Array.from([...testItems.keys()].filter((u) => history.has(u))).sort();
  const all = new Uint8Array(split.train.items.length).fill(1);
  const { itemIds, trainCounts } = trainingItems(split.train.items, all);
  return { users, history, testItems, itemIds, trainCounts };
}

/** The metrics of `lists` (user id -> top-k movie ids, best first) over the evaluated users; a user without a list has an empty one. */
export function listMetrics(evaluation, lists, k) {
  const { users, testItems, itemIds, trainCounts } = evaluation;
  const empty = new Int32Array(0);
  return rankingMetrics(
    Array.from(users, (u) => ({ recommended: lists.get(u) ?? empty, relevant: new Set(testItems.get(u)) })),
    { k, catalogSize: itemIds.length, trainCount: (id) => trainCounts[binarySearch(itemIds, id)] ?? 0 },
  );
}

/** A Ranker's (the rank step's, or popularity's) list for every evaluated user. */
export function rankerLists(ranker, evaluation, k) {
  const lists = new Map();
  for (const u of evaluation.users) lists.set(u, Array.from(ranker.recommend(evaluation.history.get(u), k).items));
  return lists;
}

/** The pipeline's popularity model (@ms/rank's): most training ratings first, ties by the smaller id. */
export function popularityRanker(evaluation) {
  return new Ranker({ model: "popularity", itemIds: evaluation.itemIds, trainCounts: evaluation.trainCounts });
}

/**
 * A rating model's list for every evaluated user (an @ms/serve model: ALS or the keras network):
 * every movie the model knows that the user did not rate in training, scored in one predict call
 * per user, the k best kept. A user the model has no factors for gets no list (it counts as empty).
 */
export async function ratingModelLists(model, evaluation, k) {
  const movies = model.movieIds;
  const selector = new TopKSelector(movies.length, k, movies);
  const userCol = new Int32Array(movies.length);
  const lists = new Map();
  for (const u of evaluation.users) {
    if (!model.hasUser(u)) continue;
    userCol.fill(u);
    const scores = await model.predict(userCol, movies);
    const seen = Array.from(evaluation.history.get(u), (m) => binarySearch(movies, m)).filter((p) => p >= 0);
    const top = selector.select(scores, seen);
    lists.set(
      u,
      Array.from(top.index.subarray(0, top.count), (i) => movies[i]),
    );
  }
  return lists;
}

/** Reads peers.py's lists ({users, items}) into a Map. */
export function peerLists(out) {
  const lists = new Map();
  out.users.forEach((u, i) => lists.set(u, out.items[i]));
  return lists;
}
