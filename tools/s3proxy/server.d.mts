/** Types of server.mjs: a real s3proxy on loopback for tests and benchmarks. */
export interface S3proxyServer {
  endpoint: string;
  bucket: string;
  dataDir: string;
  bucketDir: string;
  accessKeyId: string;
  secretAccessKey: string;
  env: { AWS_ENDPOINT_URL: string; AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  log(): string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}
export function ensureS3proxyJar(): Promise<string>;
export function startS3proxy(options?: { bucket?: string; prefix?: string }): Promise<S3proxyServer>;
