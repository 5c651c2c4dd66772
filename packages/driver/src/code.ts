/**
 * Which code a step runs: its package version and a digest of the package's built JavaScript, so
 * that rebuilding an edited step changes its cache keys. Found through the package's public entry
 * point (`import.meta.resolve`), hashed without importing it (importing @ms/etl loads DuckDB,
 * which a fully cached run must not pay for). Computed once per process.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const STEP_PACKAGES = ["@ms/etl", "@ms/als", "@ms/keras"] as const;
export type StepPackage = (typeof STEP_PACKAGES)[number];

export interface CodeIdentity {
  package: string;
  version: string;
  /** sha256 over the names and bytes of every .js file in the package's dist directory. */
  codeDigest: string;
  distDir: string;
}

const cache = new Map<string, Promise<CodeIdentity>>();

async function jsFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await jsFiles(dir, r)));
    else if (/\.(m?js|cjs|wasm)$/.test(e.name)) out.push(r);
  }
  return out;
}

async function findPackageJson(from: string): Promise<string> {
  let dir = path.dirname(from);
  for (;;) {
    const candidate = path.join(dir, "package.json");
    if (await fs.stat(candidate).then(() => true, () => false)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
}

async function compute(pkg: string): Promise<CodeIdentity> {
  const entry = fileURLToPath(import.meta.resolve(pkg));
  const distDir = path.dirname(entry);
  const pkgJson = JSON.parse(await fs.readFile(await findPackageJson(entry), "utf8")) as { version: string };
  const files = (await jsFiles(distDir)).sort();
  const contents = await Promise.all(files.map((f) => fs.readFile(path.join(distDir, f))));
  const hash = createHash("sha256");
  files.forEach((f, i) => {
    hash.update(`${f}\0${contents[i].length}\0`);
    hash.update(contents[i]);
  });
  return { package: pkg, version: pkgJson.version, codeDigest: `sha256:${hash.digest("hex")}`, distDir };
}

/** The identity of a step package; memoised for the life of the process. */
export function codeIdentity(pkg: string): Promise<CodeIdentity> {
  let p = cache.get(pkg);
  if (!p) {
    p = compute(pkg);
    cache.set(pkg, p);
  }
  return p;
}

let self: Promise<CodeIdentity> | undefined;
/** The driver's own built code (it maps parameter names, so a change to it must not reuse memos). */
export function selfIdentity(): Promise<CodeIdentity> {
  self ??= (async () => {
    const here = fileURLToPath(import.meta.url);
    const distDir = path.dirname(here);
    const files = (await jsFiles(distDir)).sort();
    const hash = createHash("sha256");
    for (const f of files) hash.update(`${f}\0`).update(await fs.readFile(path.join(distDir, f)));
    const pkgJson = JSON.parse(await fs.readFile(await findPackageJson(here), "utf8")) as { version: string };
    return { package: "@ms/driver", version: pkgJson.version, codeDigest: `sha256:${hash.digest("hex")}`, distDir };
  })();
  return self;
}
