/**
 * The S3 client of a remote cache: the SDK loaded on first use (a run without a remote cache never
 * loads it), credentials from an explicit environment or the SDK's default chain, connect and idle
 * timeouts on every call.
 */

/**
 * The SDK. It warns on stderr about Node 20, which this package supports; the warning would break
 * the bins' JSON-lines stderr, so it is turned off unless the user has chosen.
 */
export type S3Module = typeof import("@aws-sdk/client-s3");
export const sdk = (): Promise<S3Module> => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  return import("@aws-sdk/client-s3");
};
export type S3Client = InstanceType<S3Module["S3Client"]>;

/** A client for `endpoint` (path-style) or AWS, every call bounded by `timeoutMs` of silence. */
export async function createClient(env: NodeJS.ProcessEnv, endpoint: string | undefined, timeoutMs: number): Promise<S3Client> {
  const { S3Client } = await sdk();
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? "us-east-1" : undefined);
  // An explicit environment (the library's `env` option) carries its own keys; else the SDK's default chain.
  const credentials =
    env !== process.env && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  return new S3Client({
    ...(region ? { region } : {}),
    ...(credentials ? { credentials } : {}),
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Connect and idle (socket) timeouts of each request; response bodies have their own bounds (body.ts).
    requestHandler: {
      connectionTimeout: Math.min(timeoutMs, 10_000),
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
    },
    maxAttempts: 2,
    // Our own sha256 checks every blob; optional CRC trailers are not understood by every S3-compatible server.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}
