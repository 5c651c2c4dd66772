/**
 * @ms/cache: the content-addressed step cache. `cacheLayout` names every place under the cache
 * root; `CacheStore` holds entries, locks and leases; `openSession` gives a run its get-or-compute
 * (local, then a `RemoteStore`, then compute); `listCache`, `verifyCache` and `gcCache` look after
 * a cache (steps' cleaners included); `pushEntries` and `pullEntries` share it; `cacheKey` and
 * `codeIdentity` make the one key of a step's result, and `keyAgreementProblems` checks that an
 * entry from elsewhere is that result; `loadSigningKey`, `signRecord` and `signatureProblems` sign
 * and check remote entry records.
 */
export { cacheLayout, CACHE_PLACES, type CacheLayout, type CachePlace } from "./layout.js";
export { CacheStore, type CacheStoreOptions } from "./store.js";
export { ENTRY_FILE, type EntryCheck } from "./entries.js";
export { FAULT_ERRNOS, type CacheFault, type FaultErrno, type FaultOp } from "./faults.js";
export type { HeldLock, LockInfo } from "./locks.js";
export type { Lease, LiveLeases } from "./leases.js";
export {
  DEFAULT_LEASE_MS,
  hostTag,
  judgeOwner,
  leaseMsFromEnv,
  liveOwnerOf,
  ownerText,
  processStartTime,
  selfOwner,
  type Owner,
  type OwnerState,
} from "./owner.js";
export { EntryInfoSchema, type EntryInfo } from "./schemas.js";
export {
  CacheSession,
  openSession,
  type CacheHit,
  type CacheOutcome,
  type CacheSource,
  type EntryDescription,
  type GetOrComputeRequest,
} from "./session.js";
export {
  gcCache,
  listCache,
  parseAge,
  verifyCache,
  type CacheEntrySummary,
  type GcLeftovers,
  type GcOptions,
  type GcReport,
  type VerifyReport,
} from "./maintenance.js";
export {
  pullEntries,
  pushEntries,
  resolveKey,
  type PulledEntry,
  type PushedEntry,
  type PushEntriesOptions,
  type PushReport,
} from "./transfer.js";
export {
  MAX_RECORD_BYTES,
  REMOTE_RECORD_FORMAT,
  RemoteRecordSchema,
  parseRemoteRecord,
  recordProblems,
  type RemoteEntrySummary,
  type RemoteFetch,
  type RemoteFile,
  type RemoteRecord,
  type RemoteStore,
  type RemoteTransfer,
} from "./remote.js";
export {
  cacheKey,
  codeIdentity,
  codeIdentityAt,
  keyAgreementProblems,
  type ClaimedKeyInput,
  type CodeIdentity,
  type KeyInput,
} from "./key.js";
export { loadSigningKey, signRecord, signatureProblems, SignatureSchema, type RecordSignature, type RecordSigningKey } from "./signing.js";
export { withLeasedEntries, type LeasedEntries } from "./reader.js";
