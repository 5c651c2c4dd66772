/**
 * The S3 remote's checks that need no server: the `s3://BUCKET/PREFIX` and mode flags (never
 * echoing credentials), the entry record's validation before any blob is fetched, and redaction
 * of the environment's credentials.
 */
import { REMOTE_RECORD_FORMAT, cacheKey, recordProblems } from "@ms/cache";
import { BadParameterError } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { S3RemoteStore } from "./s3-store.js";
import { parseRemoteMode, parseRemoteUrl } from "./url.js";

const SHA = "b".repeat(64);
const CLAIM = { version: "0.1.0", codeDigest: "sha256:c", params: { als_rank: 4 }, inputs: {} };
const KEY = cacheKey({ step: "als", ...CLAIM });

function record(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: REMOTE_RECORD_FORMAT,
    key: KEY,
    step: "als",
    entry: { key: KEY, step: "als", ...CLAIM },
    manifest: { kind: "factors", params: { als_rank: 4 }, producedBy: { step: "als", version: "0.1.0" } },
    files: [
      { path: "manifest.json", sha256: SHA, bytes: 10 },
      { path: "user_factors.parquet", sha256: SHA, bytes: 10 },
    ],
    pushedAt: "2026-12-01T00:00:00Z",
    ...over,
  };
}

describe("parseRemoteUrl", () => {
  it("takes s3://BUCKET[/PREFIX] and normalises the prefix", () => {
    expect(parseRemoteUrl("s3://ms-cache")).toEqual({ bucket: "ms-cache", prefix: "", url: "s3://ms-cache/" });
    expect(parseRemoteUrl("s3://ms-cache/team//a/")).toEqual({ bucket: "ms-cache", prefix: "team/a/", url: "s3://ms-cache/team/a/" });
  });

  it("refuses other schemes, bad bucket names, dot segments, and never echoes a URL with credentials", () => {
    expect(() => parseRemoteUrl("https://ms-cache/x")).toThrow(BadParameterError);
    expect(() => parseRemoteUrl("s3://A_B/x")).toThrow(/not a valid bucket name/);
    expect(() => parseRemoteUrl("s3://ms-cache/a/../b")).toThrow(/\.\. segment/);
    let message = "";
    try {
      parseRemoteUrl("s3://AKIA:topsecret@ms-cache/x");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("--remote-cache");
    expect(message).not.toContain("topsecret");
  });

  it("modes: read, write, readwrite (default)", () => {
    expect(parseRemoteMode(undefined)).toBe("readwrite");
    expect(parseRemoteMode("read")).toBe("read");
    expect(() => parseRemoteMode("rw")).toThrow(/--remote-cache-mode/);
  });
});

describe("recordProblems", () => {
  it("accepts a well-formed record", () => {
    expect(recordProblems(record(), KEY)).toEqual([]);
  });

  it("refuses another key, a path leaving the entry, entry.json, a missing digest or manifest, duplicates", () => {
    expect(recordProblems(record(), "c".repeat(64)).join()).toMatch(/names key/);
    expect(
      recordProblems(
        record({
          files: [
            { path: "manifest.json", sha256: SHA, bytes: 1 },
            { path: "../x", sha256: SHA, bytes: 1 },
          ],
        }),
        KEY,
      ).length,
    ).toBeGreaterThan(0);
    expect(
      recordProblems(
        record({
          files: [
            { path: "manifest.json", sha256: SHA, bytes: 1 },
            { path: "entry.json", sha256: SHA, bytes: 1 },
          ],
        }),
        KEY,
      ).join(),
    ).toMatch(/entry\.json/);
    expect(recordProblems(record({ files: [{ path: "manifest.json", sha256: "xyz", bytes: 1 }] }), KEY).join()).toMatch(/no sha256/);
    expect(recordProblems(record({ files: [{ path: "a", sha256: SHA, bytes: 1 }] }), KEY).join()).toMatch(/no manifest\.json/);
    expect(
      recordProblems(
        record({
          files: [
            { path: "manifest.json", sha256: SHA, bytes: 1 },
            { path: "manifest.json", sha256: SHA, bytes: 1 },
          ],
        }),
        KEY,
      ).join(),
    ).toMatch(/twice/);
    expect(recordProblems(record({ format: "other" }), KEY).join()).toMatch(/format/);
    expect(recordProblems(null, KEY)).toEqual(["not an entry record"]);
  });
});

describe("S3RemoteStore", () => {
  it("redacts the environment's credentials, refuses an endpoint with credentials, and knows its mode", () => {
    const env = { AWS_SECRET_ACCESS_KEY: "s3cr3t-value", AWS_ACCESS_KEY_ID: "AKIDVALUE" };
    const remote = new S3RemoteStore({ url: "s3://ms-cache/p", mode: "read", env, endpoint: "http://127.0.0.1:9" });
    expect(remote.redact("signature for AKIDVALUE with s3cr3t-value failed")).toBe("signature for *** with *** failed");
    expect(remote.canRead && !remote.canWrite).toBe(true);
    expect(() => new S3RemoteStore({ url: "s3://ms-cache/p", env, endpoint: "http://u:pw@127.0.0.1:9" })).toThrow(
      /must not hold credentials/,
    );
  });
});
