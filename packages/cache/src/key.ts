/**
 * What a step's cache key is made of, computed in this one place:
 *
 *   key = sha256(canonicalJson({ step, version, codeDigest, params, inputs: { name: digest } }))
 *
 * `codeDigest` is the step's code identity: the built JavaScript (and WASM) of its package and of
 * every `@ms/*` package it imports, transitively, plus the installed versions of the third-party
 * runtime dependencies of each of them (DuckDB, TensorFlow.js, ...). So editing the split in
 * @ms/contracts and rebuilding gives every step a new key, and so does upgrading DuckDB.
 * Packages are found through their package.json and `node_modules` the way Node resolves them,
 * and hashed without being imported. Computed once per process.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { canonicalJson, parseJsonText, recordOf, sha256Hex, walkFiles, type Digest, type ParamValue } from "@ms/contracts";
import * as v from "valibot";

export interface CodeIdentity {
  package: string;
  version: string;
  /** sha256 over the built code of the package closure and its third-party versions. */
  codeDigest: string;
  /** What went into it: `@ms/*` packages with their dist digests, third-party packages with their versions. */
  closure: { ms: Record<string, { version: string; dist: string }>; thirdParty: Record<string, string> };
}

const PackageJsonSchema = v.object({
  name: v.string(),
  version: v.string(),
  dependencies: v.optional(recordOf(v.string())),
  optionalDependencies: v.optional(recordOf(v.string())),
});
type PackageJson = v.InferOutput<typeof PackageJsonSchema>;

/** The directory of `name` as Node would find it from `fromDir` (walking up through node_modules). */
async function findPackageDir(name: string, fromDir: string): Promise<string | undefined> {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", name);
    if (
      await fs.stat(path.join(candidate, "package.json")).then(
        () => true,
        () => false,
      )
    )
      return fs.realpath(candidate);
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

async function readPackageJson(dir: string): Promise<PackageJson> {
  const file = path.join(dir, "package.json");
  return parseJsonText(await fs.readFile(file, "utf8"), PackageJsonSchema, file);
}

async function distDigest(pkgDir: string): Promise<string> {
  const dist = path.join(pkgDir, "dist");
  const files = (await walkFiles(dist)).filter((f) => /\.(m?js|cjs|wasm|py)$/.test(f));
  const hash = createHash("sha256");
  const contents = await Promise.all(files.map((f) => fs.readFile(path.join(dist, f))));
  files.forEach((f, i) => hash.update(`${f}\0${contents[i].length}\0`).update(contents[i]));
  return `sha256:${hash.digest("hex")}`;
}

/** The package directory of `pkg` as Node resolves it from the module at `from` (a file URL). */
async function entryDir(pkg: string, from: string | URL): Promise<string> {
  const here = path.dirname(fileURLToPath(from));
  const dir = await findPackageDir(pkg, here);
  if (!dir) throw new Error(`cannot find the package ${pkg} from ${here}`);
  return dir;
}

interface PackageFacts {
  name: string;
  version: string;
  dist: string;
  /** `@ms/*` dependencies by directory; third-party ones by version ("absent": an optional one that failed to install). */
  ms: Record<string, string>;
  thirdParty: Record<string, string>;
}

/** One package's facts, each package read and hashed once per process however many closures hold it. */
const facts = new Map<string, Promise<PackageFacts>>();
function packageFacts(dir: string): Promise<PackageFacts> {
  let p = facts.get(dir);
  if (!p) {
    p = (async () => {
      const json = await readPackageJson(dir);
      const deps = Object.keys({ ...json.dependencies, ...json.optionalDependencies }).sort();
      const [dist, found] = await Promise.all([distDigest(dir), Promise.all(deps.map((dep) => findPackageDir(dep, dir)))]);
      const out: PackageFacts = { name: json.name, version: json.version, dist, ms: {}, thirdParty: {} };
      await Promise.all(
        deps.map(async (dep, i) => {
          const depDir = found[i];
          if (dep.startsWith("@ms/")) {
            if (!depDir) throw new Error(`${json.name} depends on ${dep}, which is not installed`);
            out.ms[dep] = depDir;
          } else {
            out.thirdParty[dep] = depDir ? (await readPackageJson(depDir)).version : "absent";
          }
        }),
      );
      return out;
    })();
    facts.set(dir, p);
  }
  return p;
}

/** The identity of the package installed at `root`. */
export async function codeIdentityAt(root: string): Promise<CodeIdentity> {
  const ms: CodeIdentity["closure"]["ms"] = {};
  const thirdParty: Record<string, string> = {};
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<PackageFacts> => {
    seen.add(dir);
    const f = await packageFacts(dir);
    ms[f.name] = { version: f.version, dist: f.dist };
    Object.assign(thirdParty, f.thirdParty);
    await Promise.all(
      Object.values(f.ms)
        .filter((d) => !seen.has(d))
        .map(visit),
    );
    return f;
  };
  const top = await visit(root);
  const closure = { ms, thirdParty };
  return { package: top.name, version: top.version, codeDigest: `sha256:${sha256Hex(canonicalJson(closure))}`, closure };
}

const identities = new Map<string, Promise<CodeIdentity>>();

/**
 * The code identity of a step package, found the way the module at `from` (its `import.meta.url`:
 * the code that runs the step, which depends on it) would import it; memoised for the life of the
 * process.
 */
export function codeIdentity(pkg: string, from: string | URL): Promise<CodeIdentity> {
  const id = `${String(from)}\0${pkg}`;
  let p = identities.get(id);
  if (!p) {
    p = entryDir(pkg, from).then(codeIdentityAt);
    identities.set(id, p);
  }
  return p;
}

export interface KeyInput {
  step: string;
  version: string;
  codeDigest: string;
  /** The step's parameters that can change its result, resolved (defaults included). */
  params: Readonly<Record<string, ParamValue>>;
  /** Content digests of the step's inputs, by input name. */
  inputs: Readonly<Record<string, Digest>>;
}

/** The one cache key function. */
export function cacheKey(input: KeyInput): string {
  return sha256Hex(
    canonicalJson({ step: input.step, version: input.version, codeDigest: input.codeDigest, params: input.params, inputs: input.inputs }),
  );
}

/** What an entry says made it: the fields of `KeyInput` as an entry record carries them (not yet trusted). */
export interface ClaimedKeyInput {
  version: string;
  codeDigest: string;
  params: Readonly<Record<string, unknown>>;
  inputs: Readonly<Record<string, string>>;
}

const isParamValue = (value: unknown): value is ParamValue =>
  typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));
const isDigest = (value: string): value is Digest => /^sha256:[0-9a-f]{64}$/.test(value);

/**
 * Why an entry from elsewhere (a remote cache) is not the result of `key`; empty when it is. The
 * key is recomputed by `cacheKey` from what the entry claims (step, version, code digest, every
 * parameter in the key, input digests), and the manifest must say the same step, version and
 * parameters: outputs of other parameters published under this key are refused.
 */
export function keyAgreementProblems(
  key: string,
  step: string,
  claimed: ClaimedKeyInput,
  manifest: { kind: string; params?: unknown; producedBy?: unknown },
): string[] {
  const problems: string[] = [];
  const params: Record<string, ParamValue> = {};
  for (const [name, value] of Object.entries(claimed.params)) {
    if (isParamValue(value)) params[name] = value;
    else problems.push(`parameter ${JSON.stringify(name)} is not a number, string or boolean`);
  }
  const inputs: Record<string, Digest> = {};
  for (const [name, digest] of Object.entries(claimed.inputs)) {
    if (isDigest(digest)) inputs[name] = digest;
    else problems.push(`input ${JSON.stringify(name)} has no sha256 digest`);
  }
  if (problems.length) return problems;
  const recomputed = cacheKey({ step, version: claimed.version, codeDigest: claimed.codeDigest, params, inputs });
  if (recomputed !== key) problems.push(`its step, code, parameters and inputs make the key ${recomputed}, not ${key}`);
  const by =
    typeof manifest.producedBy === "object" && manifest.producedBy !== null ? (manifest.producedBy as Record<string, unknown>) : {};
  if (by.step !== step) problems.push(`its manifest was produced by step ${JSON.stringify(by.step ?? null)}, not ${step}`);
  if (by.version !== claimed.version)
    problems.push(`its manifest was produced by version ${JSON.stringify(by.version ?? null)}, not ${JSON.stringify(claimed.version)}`);
  if (by.key !== undefined && by.key !== key) problems.push(`its manifest names key ${JSON.stringify(by.key)}`);
  const said = typeof manifest.params === "object" && manifest.params !== null ? (manifest.params as Record<string, unknown>) : {};
  for (const [name, value] of Object.entries(params)) {
    if (canonicalJson(said[name]) !== canonicalJson(value))
      problems.push(
        `its manifest says ${JSON.stringify(name)}=${canonicalJson(said[name] ?? null)}, the key's parameter is ${canonicalJson(value)}`,
      );
  }
  return problems;
}
