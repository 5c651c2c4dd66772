/**
 * @ms/cache-s3: the step cache's remote on S3-compatible object storage. `S3RemoteStore`
 * implements @ms/cache's `RemoteStore` over the AWS SDK (the only package that uses it), with
 * bounded reads and optional signed records;
 * `parseRemoteUrl` and `parseRemoteMode` read what `--remote-cache` and its mode may say.
 */
export { S3RemoteStore, type S3RemoteStoreOptions } from "./s3-store.js";
export { REMOTE_MODES, parseRemoteMode, parseRemoteUrl, type RemoteMode } from "./url.js";
