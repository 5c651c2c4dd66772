/**
 * The flags several `ms` commands share, described once: where the cache and the tracking store
 * are, and the remote cache (where, which server, and the key its entry records are signed with).
 */
export const SHARED_OPTIONS = {
  "cache-dir": {
    type: "string",
    value: "DIR",
    description: "the step cache (default $MS_CACHE_DIR, else $XDG_CACHE_HOME/ms or ~/.cache/ms)",
  },
  "tracking-uri": {
    type: "string",
    value: "URI",
    description: "MLflow store: a path, file: URI or http(s):// server (default $MLFLOW_TRACKING_URI or ./mlruns)",
  },
  "remote-cache": {
    type: "string",
    value: "URL",
    description: "a shared step cache s3://BUCKET/PREFIX (default $MS_REMOTE_CACHE); credentials and region from the AWS chain",
  },
  "remote-cache-endpoint": {
    type: "string",
    value: "URL",
    description: "an S3-compatible server (default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL); path-style addressing",
  },
  "remote-cache-signing-key": {
    type: "string",
    value: "PEM",
    description:
      "an ed25519 key (default $MS_REMOTE_CACHE_SIGNING_KEY): a private key signs pushed entries; with either, only signed entries are used",
  },
} as const;

/** `--remote-cache`, else $MS_REMOTE_CACHE (an empty one is none). */
export function remoteCacheUrl(flag: string | undefined): string | undefined {
  return flag ?? (process.env.MS_REMOTE_CACHE || undefined);
}
