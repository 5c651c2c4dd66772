/**
 * Signed entry records (optional), ed25519 from node:crypto. A record's content addressing proves
 * that its blobs are the bytes it names (integrity); a signature proves that a holder of the
 * private key wrote the record (provenance):
 *
 *   signature.value = base64(ed25519_sign(privateKey, canonicalJson(record without "signature")))
 *   signature.keyId = first 16 hex digits of sha256(public key, SPKI DER)
 *
 * Writers (CI) hold the private key and sign every record they push; readers hold the public key
 * and refuse an unsigned record or one whose signature does not verify. A PEM file with a private
 * key signs and verifies; one with a public key only verifies.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { BadParameterError, canonicalJson } from "@ms/contracts";
import * as v from "valibot";

/** The `signature` field of a signed record. */
export const SignatureSchema = v.object({
  alg: v.literal("ed25519"),
  keyId: v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/)),
  value: v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/]{86}==$/)),
});

export type RecordSignature = v.InferOutput<typeof SignatureSchema>;

/** A key of `--remote-cache-signing-key`: always a public key, and the private one when the file holds it. */
export interface RecordSigningKey {
  readonly file: string;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject | undefined;
  readonly keyId: string;
}

/** A PEM key file is a few hundred bytes; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

function readKeyFile(file: string, flag: string): string {
  try {
    const size = statSync(file).size;
    if (size > MAX_KEY_FILE_BYTES) throw new BadParameterError(flag, `${file} is ${size} bytes: not a PEM key file`);
    return readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof BadParameterError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw new BadParameterError(flag, `cannot read the key file ${file} (${code || (error as Error).message})`);
  }
}

/** The ed25519 key in the PEM file `file` (PKCS#8 private or SPKI public); BadParameterError naming `flag` otherwise. */
export function loadSigningKey(file: string, flag = "--remote-cache-signing-key"): RecordSigningKey {
  const pem = readKeyFile(file, flag);
  let privateKey: KeyObject | undefined;
  let publicKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
    publicKey = createPublicKey(privateKey);
  } catch {
    try {
      publicKey = createPublicKey(pem);
    } catch {
      throw new BadParameterError(flag, `${file} holds no PEM key (make one with: openssl genpkey -algorithm ed25519 -out KEY.pem)`);
    }
  }
  if (publicKey.asymmetricKeyType !== "ed25519")
    throw new BadParameterError(flag, `${file} holds a ${publicKey.asymmetricKeyType ?? "symmetric"} key; an ed25519 key is needed`);
  return { file, publicKey, privateKey, keyId: keyIdOf(publicKey) };
}

/** What is signed: the record as JSON would carry it, keys sorted, without its signature. */
function signedBytes(record: object): Buffer {
  const { signature: _signature, ...rest } = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
  return Buffer.from(canonicalJson(rest), "utf8");
}

/** `record` with its signature; the key must hold a private key. */
export function signRecord<T extends object>(record: T, key: RecordSigningKey): T & { signature: RecordSignature } {
  if (!key.privateKey) throw new BadParameterError("--remote-cache-signing-key", `${key.file} holds a public key only: it cannot sign`);
  const value = sign(null, signedBytes(record), key.privateKey).toString("base64");
  return { ...record, signature: { alg: "ed25519", keyId: key.keyId, value } };
}

/** Why the raw record `raw` (as parsed from JSON) is not signed by `key`; empty when it is. */
export function signatureProblems(raw: Record<string, unknown>, key: RecordSigningKey): string[] {
  if (raw.signature === undefined) return [`is not signed (a signing key ${key.keyId} is configured)`];
  const parsed = v.safeParse(SignatureSchema, raw.signature);
  if (!parsed.success) return ["has a malformed signature"];
  const signature = parsed.output;
  if (signature.keyId !== key.keyId) return [`is signed by key ${signature.keyId}, not by the configured key ${key.keyId}`];
  const ok = verify(null, signedBytes(raw), key.publicKey, Buffer.from(signature.value, "base64"));
  return ok ? [] : [`its signature does not verify with key ${key.keyId}`];
}
