/**
 * Reading published entries from outside a run (serving a run's models): each entry is put under
 * a lease before it is checked, so `ms cache gc` beside the reader leaves it alone, as it leaves a
 * running pipeline's entries; the lease ends when the read does.
 */
import type { EntryCheck } from "./entries.js";
import { CacheStore } from "./store.js";

/** The entries of a cache as a reader sees them: where, checked, and protected while read. */
export interface LeasedEntries {
  readonly root: string;
  entryDir(key: string): string;
  checkEntry(key: string): Promise<EntryCheck>;
  protect(key: string): Promise<boolean>;
}

/** Calls `read` with the entries of the cache at `root` under one lease, released after. */
export async function withLeasedEntries<T>(root: string, read: (entries: LeasedEntries) => Promise<T>): Promise<T> {
  const store = new CacheStore(root);
  const lease = store.newLease();
  try {
    return await read({
      root: store.root,
      entryDir: (key) => store.entryDir(key),
      checkEntry: (key) => store.checkEntry(key),
      protect: (key) => lease.protect(key),
    });
  } finally {
    await lease.close();
  }
}
