/**
 * What a batch of recommendations needs to know about a run's data, built once from its ratings:
 * each user's seen movies (compressed rows: one offsets array, one items array, no per-user
 * objects, so 20M ratings cost two typed arrays), each movie's training count, and the users of
 * the training part (what `--users all` answers).
 *
 * "Seen" is every rating of the run's data except, with split=file, the test file's: those are
 * held-out judgements the user gave outside the data the model was asked about, and an outside
 * evaluation looks for them in the lists. With hash, kfold and time splits the test part is part
 * of the user's history (a person who rated a film has seen it), so it is excluded from their list
 * and, for the ranker, counts as history.
 */
import { binarySearch, splitMaskOf, type SplitColumns, type SplitSpec } from "@ms/contracts";

/** The ratings a history is built from: etl's columns (the split key when the split has one). */
export interface HistoryColumns extends SplitColumns {
  rows: number;
}

export interface RunHistory {
  /** Ascending ids of users with at least one seen rating. */
  readonly users: Int32Array;
  /** `items[offsets[u]..offsets[u + 1])`: the movies `users[u]` has seen. */
  readonly offsets: Int32Array;
  readonly items: Int32Array;
  /** Ascending ids of movies with at least one training rating, and those counts. */
  readonly movies: Int32Array;
  readonly trainCounts: Int32Array;
  /** Ascending ids of the users with at least one training rating. */
  readonly trainUsers: Int32Array;
  /** The movies `userId` has seen (a view, not a copy); undefined for a user without ratings. */
  seenOf(userId: number): Int32Array | undefined;
  /** The training count of `movieId` (0 when it has none). */
  trainCount(movieId: number): number;
}

/**
 * The ascending distinct values of `ids` and each value's index among them. A dense table over
 * [0, max] when the ids are small (MovieLens ids are), else a sort of a copy.
 */
export function indexIds(ids: Int32Array): { distinct: Int32Array; index: Int32Array } {
  const n = ids.length;
  let min = 0;
  let max = -1;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    if (id < min) min = id;
    if (id > max) max = id;
  }
  const index = new Int32Array(n);
  if (min >= 0 && max < 4 * n + 65_536) {
    const slot = new Int32Array(max + 1).fill(-1);
    for (let i = 0; i < n; i++) slot[ids[i]] = 0;
    let count = 0;
    for (let id = 0; id <= max; id++) if (slot[id] === 0) slot[id] = count++;
    const distinct = new Int32Array(count);
    for (let id = 0; id <= max; id++) if (slot[id] >= 0) distinct[slot[id]] = id;
    for (let i = 0; i < n; i++) index[i] = slot[ids[i]];
    return { distinct, index };
  }
  const sorted = Int32Array.from(ids).sort();
  let count = 0;
  for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[count++] = sorted[i];
  const distinct = sorted.slice(0, count);
  for (let i = 0; i < n; i++) index[i] = binarySearch(distinct, ids[i]);
  return { distinct, index };
}

/** Builds the history of a run's ratings under its split (see the module docblock for "seen"). */
export function buildHistory(cols: HistoryColumns, split: SplitSpec): RunHistory {
  const n = cols.rows;
  const train = splitMaskOf(split, cols);
  const fileSplit = (split.kind ?? "hash") === "file";
  const users = indexIds(cols.userIds);
  const movies = indexIds(cols.movieIds);
  const u = users.distinct.length;
  const offsets = new Int32Array(u + 1);
  const movieCounts = new Int32Array(movies.distinct.length);
  const trainedUser = new Uint8Array(u);
  for (let i = 0; i < n; i++) {
    if (train[i] === 1) {
      movieCounts[movies.index[i]]++;
      trainedUser[users.index[i]] = 1;
    }
    if (!fileSplit || train[i] === 1) offsets[users.index[i] + 1]++;
  }
  for (let k = 0; k < u; k++) offsets[k + 1] += offsets[k];
  const items = new Int32Array(offsets[u]);
  const fill = offsets.slice(0, u);
  for (let i = 0; i < n; i++) if (!fileSplit || train[i] === 1) items[fill[users.index[i]]++] = cols.movieIds[i];
  return historyOf(users.distinct, offsets, items, movies.distinct, movieCounts, trainedUser);
}

/** Drops users without seen ratings and movies without training ratings from the index arrays. */
function historyOf(
  allUsers: Int32Array,
  allOffsets: Int32Array,
  items: Int32Array,
  allMovies: Int32Array,
  movieCounts: Int32Array,
  trainedUser: Uint8Array,
): RunHistory {
  const keepUsers: number[] = [];
  for (let k = 0; k < allUsers.length; k++) if (allOffsets[k + 1] > allOffsets[k]) keepUsers.push(k);
  const users = Int32Array.from(keepUsers, (k) => allUsers[k]);
  // Users without seen ratings hold no items, so the kept users' ranges stay contiguous.
  const offsets = new Int32Array(users.length + 1);
  for (let j = 0; j < keepUsers.length; j++) offsets[j] = allOffsets[keepUsers[j]];
  offsets[users.length] = items.length;
  const trainUsers = allUsers.filter((_, k) => trainedUser[k] === 1);
  const movies = allMovies.filter((_, m) => movieCounts[m] > 0);
  const trainCounts = movieCounts.filter((c) => c > 0);
  return {
    users,
    offsets,
    items,
    movies,
    trainCounts,
    trainUsers,
    seenOf(userId) {
      const k = binarySearch(users, userId);
      return k < 0 ? undefined : items.subarray(offsets[k], offsets[k + 1]);
    },
    trainCount(movieId) {
      const m = binarySearch(movies, movieId);
      return m < 0 ? 0 : trainCounts[m];
    },
  };
}
