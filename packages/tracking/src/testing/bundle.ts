/**
 * Test support: compiles a TypeScript entry of this package into one ESM file that a plain
 * `node` child process can run, so multi-process tests exercise the real source. Uses the
 * esbuild that the workspace's tsup already brings.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgRoot = path.resolve(here, "../..");

export async function bundleForChild(entry: string, name: string): Promise<string> {
  const fromRoot = createRequire(path.join(pkgRoot, "../../package.json"));
  const esbuild = createRequire(fromRoot.resolve("tsup"))("esbuild") as { build(options: Record<string, unknown>): Promise<unknown> };
  // Inside the package's node_modules so that `@ms/contracts` resolves as it does for the package.
  const outfile = path.join(pkgRoot, "node_modules/.ms-test", `${name}.${process.pid}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error",
  });
  return outfile;
}
