/**
 * Dense user and movie numbering over every rating of an out-of-fold run (known to every fit, so
 * the fold fits and the full fit share one numbering), per-row rating counts over a part, and the
 * sampler's view of the ratings on that numbering.
 */
import { indexIds } from "@ms/als";
import type { GibbsData } from "./bayes.js";

/** The ratings' columns the numbering reads. */
interface IdColumns {
  rows: number;
  userIds: Int32Array;
  movieIds: Int32Array;
  ratings: Float32Array;
  timestamps?: ArrayLike<number>;
}

/** Dense ids over every rating (known to every fit, so fold fits and the full fit share one numbering). */
export interface Dense {
  users: Int32Array;
  items: Int32Array;
  userIdx: Int32Array;
  itemIdx: Int32Array;
}

export function denseIndex(ratings: IdColumns): Dense {
  const all = new Uint8Array(ratings.rows).fill(1);
  const users = indexIds(ratings.userIds, all);
  const items = indexIds(ratings.movieIds, all);
  const userIdx = new Int32Array(ratings.rows);
  const itemIdx = new Int32Array(ratings.rows);
  for (let i = 0; i < ratings.rows; i++) {
    userIdx[i] = users.lookup(ratings.userIds[i]);
    itemIdx[i] = items.lookup(ratings.movieIds[i]);
  }
  return { users: users.ids, items: items.ids, userIdx, itemIdx };
}

/** Counts per dense user and movie over `rows`. */
export function counts(d: Dense, rows: Int32Array): { user: Int32Array; item: Int32Array } {
  const user = new Int32Array(d.users.length);
  const item = new Int32Array(d.items.length);
  for (let k = 0; k < rows.length; k++) {
    user[d.userIdx[rows[k]]]++;
    item[d.itemIdx[rows[k]]]++;
  }
  return { user, item };
}

/** The ratings on the dense numbering, as the sampler reads them. */
export function gibbsData(d: Dense, ratings: IdColumns): GibbsData {
  return {
    userIdx: d.userIdx,
    itemIdx: d.itemIdx,
    ratings: ratings.ratings,
    ...(ratings.timestamps ? { timestamps: ratings.timestamps } : {}),
    nUsers: d.users.length,
    nItems: d.items.length,
  };
}
