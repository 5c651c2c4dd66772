/**
 * A user of the step cache in its own process, for the concurrency tests: it drives the built
 * session API of @ms/cache (open a session, getOrCompute with a trivial step, read what it got back,
 * close) and exits non-zero if anything it was handed is missing or wrong.
 *
 *   node cache-user.mjs '{"cache":"...","keys":["<64 hex>"],"mode":"loop","iterations":20}'
 *   mode "hold": get the keys, print "ready", wait for a line on stdin, re-read them, close.
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { exitCodeFor, writeManifest } from "@ms/contracts";
import { openSession } from "@ms/cache";

const args = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the trivial step writes for a key: deterministic, of a size that depends on the key. */
function expected(key) {
  return { "user_factors.parquet": key.repeat(1 + parseInt(key[0], 16)), "item_factors.parquet": [...key].reverse().join("") };
}

async function compute(key, dir) {
  await mkdir(dir);
  const files = expected(key);
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  if (args.computeMs) await sleep(args.computeMs);
  await writeManifest(dir, {
    kind: "factors",
    files: Object.keys(files),
    params: {},
    metrics: {},
    details: {},
    producedBy: { step: "als", version: "test", key },
  });
}

async function check(key, dir) {
  for (const [name, text] of Object.entries(expected(key))) {
    const got = await readFile(path.join(dir, name), "utf8");
    if (got !== text) throw new Error(`${path.join(dir, name)}: wrong content`);
  }
}

async function use(session, key) {
  const out = await session.getOrCompute({
    key,
    step: "als",
    info: { version: "test", codeDigest: "sha256:test", params: {}, inputs: {}, producedByRun: `pid-${process.pid}` },
    force: args.force === true,
    compute: (dir) => compute(key, dir),
    onWait: (holder, waitMs) => process.stderr.write(`wait ${JSON.stringify({ pid: holder.pid, hostname: holder.hostname, waitMs })}\n`),
    onDamaged: (k, problems) => process.stderr.write(`damaged ${k} ${problems.join("; ")}\n`),
  });
  await check(key, out.dir);
  return out;
}

async function main() {
  const stats = { computed: 0, cached: 0 };
  if (args.mode === "hold") {
    const session = openSession(args.cache);
    const dirs = [];
    for (const key of args.keys) {
      const out = await use(session, key);
      stats[out.cached ? "cached" : "computed"]++;
      dirs.push([key, out.dir]);
    }
    process.stdout.write(`ready ${JSON.stringify(stats)}\n`);
    const lines = createInterface({ input: process.stdin });
    for await (const _line of lines) break;
    for (const [key, dir] of dirs) await check(key, dir);
    await session.close();
    process.stdout.write("done\n");
    return;
  }
  for (let i = 0; i < args.iterations; i++) {
    const session = openSession(args.cache);
    const dirs = [];
    for (const key of args.keys) {
      const out = await use(session, key);
      stats[out.cached ? "cached" : "computed"]++;
      dirs.push([key, out.dir]);
      await sleep(Math.random() * 5);
    }
    // A downstream step reads the upstream artifacts again later in the run.
    for (const [key, dir] of dirs) await check(key, dir);
    await session.close();
  }
  process.stdout.write(`${JSON.stringify(stats)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`cache-user: ${error?.stack ?? error}\n`);
    process.exit(exitCodeFor(error) === 0 ? 1 : exitCodeFor(error));
  },
);
