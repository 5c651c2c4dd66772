/**
 * A remote entry record must be the result of the key it is stored under (the key recomputed from
 * what it claims, and a manifest that says the same step, version and parameters), and with a
 * signing key it must carry that key's ed25519 signature: the poisoned-cache cases of issue 24.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { BadParameterError } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheKey } from "./key.js";
import { REMOTE_RECORD_FORMAT, parseRemoteRecord, recordProblems } from "./remote.js";
import { loadSigningKey, signRecord } from "./signing.js";

const SHA = "b".repeat(64);
const RATINGS = `sha256:${"d".repeat(64)}` as const;
const CLAIM = {
  version: "0.1.0",
  codeDigest: `sha256:${"c".repeat(64)}`,
  params: { als_reg_param: 0.1, seed: 42 },
  inputs: { ratings: RATINGS },
};
const KEY = cacheKey({ step: "als", ...CLAIM });

/** A record as a writer pushes it for KEY, with `over` applied to it, its entry or its manifest. */
function record(over: { top?: object; entry?: object; manifest?: object } = {}): Record<string, unknown> {
  return {
    format: REMOTE_RECORD_FORMAT,
    key: KEY,
    step: "als",
    entry: { key: KEY, step: "als", ...CLAIM, outputDigest: `sha256:${SHA}`, ...over.entry },
    manifest: {
      kind: "factors",
      params: { als_reg_param: 0.1, seed: 42, als_num_threads: 2 },
      producedBy: { step: "als", version: "0.1.0" },
      ...over.manifest,
    },
    files: [
      { path: "manifest.json", sha256: SHA, bytes: 10 },
      { path: "user_factors.parquet", sha256: SHA, bytes: 10 },
    ],
    pushedAt: "2026-12-01T00:00:00Z",
    ...over.top,
  };
}

const text = (r: object) => JSON.stringify(r);

describe("a remote record agrees with its key", () => {
  it("accepts the record of the key (a parameter outside the key may differ)", () => {
    expect(recordProblems(record(), KEY)).toEqual([]);
    expect(recordProblems(record({ manifest: { params: { als_reg_param: 0.1, seed: 42, als_num_threads: 1 } } }), KEY)).toEqual([]);
  });

  it("refuses a manifest that says regParam 5, seed 7 under the key of 0.1, 42", () => {
    const problems = recordProblems(record({ manifest: { params: { als_reg_param: 5, seed: 7 } } }), KEY);
    expect(problems).toEqual([
      `its manifest says "als_reg_param"=5, the key's parameter is 0.1`,
      `its manifest says "seed"=7, the key's parameter is 42`,
    ]);
  });

  it("refuses an entry of other parameters, inputs, code or step copied under the key (the key recomputed differs)", () => {
    const other = { als_reg_param: 5, seed: 7 };
    const copied = record({ entry: { params: other }, manifest: { params: other } });
    expect(recordProblems(copied, KEY).join()).toMatch(`make the key ${cacheKey({ step: "als", ...CLAIM, params: other })}, not ${KEY}`);
    expect(recordProblems(record({ entry: { inputs: { ratings: `sha256:${"e".repeat(64)}` } } }), KEY).join()).toMatch(/make the key/);
    expect(recordProblems(record({ entry: { codeDigest: "sha256:other" } }), KEY).join()).toMatch(/make the key/);
    expect(recordProblems(record({ entry: { params: {} } }), KEY).join()).toMatch(/make the key/);
    expect(recordProblems(record({ manifest: { producedBy: { step: "keras", version: "0.1.0" } } }), KEY).join()).toMatch(
      /produced by step "keras", not als/,
    );
    expect(recordProblems(record({ manifest: { producedBy: { step: "als", version: "9" } } }), KEY).join()).toMatch(/version "9"/);
    expect(recordProblems(record({ manifest: { producedBy: { step: "als", version: "0.1.0", key: SHA } } }), KEY).join()).toMatch(
      /names key/,
    );
    expect(recordProblems(record({ entry: { step: "keras" } }), KEY).join()).toMatch(/entry names step "keras"/);
    expect(recordProblems(record({ entry: { params: { seed: [42] } } }), KEY).join()).toMatch(/"seed" is not a number/);
  });
});

describe("signed records", () => {
  let dir: string;
  let privateFile: string;
  let publicFile: string;
  let otherFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "ms-signing-"));
    const pair = generateKeyPairSync("ed25519");
    privateFile = path.join(dir, "writer.pem");
    publicFile = path.join(dir, "reader.pub");
    otherFile = path.join(dir, "other.pem");
    await writeFile(privateFile, pair.privateKey.export({ type: "pkcs8", format: "pem" }));
    await writeFile(publicFile, pair.publicKey.export({ type: "spki", format: "pem" }));
    await writeFile(otherFile, generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a record signed with the private key is served to a reader with the public key", () => {
    const writer = loadSigningKey(privateFile);
    const reader = loadSigningKey(publicFile);
    expect(reader.privateKey).toBeUndefined();
    expect(reader.keyId).toBe(writer.keyId);
    const signed = signRecord(record(), writer);
    const got = parseRemoteRecord(text(signed), KEY, "entries/x.json", reader);
    expect("record" in got && got.record.signature?.keyId).toBe(writer.keyId);
  });

  it("an unsigned, tampered, or otherwise signed record is refused when a key is configured", () => {
    const reader = loadSigningKey(publicFile);
    const problems = (r: object) => {
      const got = parseRemoteRecord(text(r), KEY, "entries/x.json", reader);
      return "problems" in got ? got.problems.join() : "";
    };
    expect(problems(record())).toMatch(/entries\/x\.json: is not signed/);
    const signed = signRecord(record(), loadSigningKey(privateFile));
    expect(problems({ ...signed, pushedAt: "2026-12-02T00:00:00Z" })).toMatch(/does not verify/);
    const files = [
      { path: "manifest.json", sha256: "f".repeat(64), bytes: 10 },
      { path: "user_factors.parquet", sha256: SHA, bytes: 10 },
    ];
    expect(problems({ ...signed, files })).toMatch(/does not verify/);
    expect(problems(signRecord(record(), loadSigningKey(otherFile)))).toMatch(/is signed by key [0-9a-f]{16}, not by the configured key/);
    expect(problems({ ...signed, signature: { alg: "ed25519", keyId: "x", value: "y" } })).toMatch(/field signature\.keyId/);
    // Without a key configured, a signature is neither needed nor in the way.
    expect("record" in parseRemoteRecord(text(signed), KEY, "x")).toBe(true);
  });

  it("a key file that is missing, not a key, or not ed25519 is a bad parameter naming the flag", async () => {
    const rsa = path.join(dir, "rsa.pem");
    await writeFile(rsa, generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }));
    const notKey = path.join(dir, "note.txt");
    await writeFile(notKey, "hello");
    for (const [file, why] of [
      [path.join(dir, "absent.pem"), /cannot read the key file .*ENOENT/],
      [notKey, /holds no PEM key/],
      [rsa, /holds a rsa key; an ed25519 key is needed/],
    ] as const) {
      expect(() => loadSigningKey(file)).toThrow(BadParameterError);
      expect(() => loadSigningKey(file)).toThrow(why);
    }
    expect(() => signRecord(record(), loadSigningKey(publicFile))).toThrow(/public key only/);
  });
});
