/**
 * The shared step cache against a real S3 server: s3proxy (Maven Central's jar, filesystem backend)
 * on 127.0.0.1, started here and stopped after. Two cache directories share one bucket: run 1
 * computes and pushes, run 2 on an empty cache gets etl, als, fm and keras as remote hits with the
 * same outputs (download names a local file and is never shared); read-only mode writes nothing;
 * a blob damaged on the server is a miss reported once, recomputed and repaired by the push; two
 * runs pushing one key leave one valid entry; a server killed mid-upload leaves no entry record;
 * a server that is down or refuses the credentials is one warning (exit 6 with
 * --remote-cache-required); `ms cache push | pull | ls --remote`; the secret never appears in
 * logs, tags or the cache. Hostile remotes (issue 24): a blob body stalled halfway by a loopback
 * proxy ends within the timeout, a full local disk while pulling is exit 8, an entry of other
 * parameters put under a key is refused and replaced, and with a signing key only signed entries
 * are served.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { cp, mkdir, open, readFile, readdir, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { createTracker } from "@ms/tracking";
import { freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3proxy, type S3proxyServer } from "../../../tools/s3proxy/server.mjs";
import { startStallProxy } from "../../../tools/s3proxy/stall-proxy.mjs";
import { SMALL, finish, listDir, ms, runJson, sandbox, spawnMs, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let s3: S3proxyServer;
let a: Sandbox;
let cold: RunDoc;
const boxes: Sandbox[] = [];
const REMOTE = "s3://ms-cache/team";

async function box(): Promise<Sandbox> {
  const b = await sandbox("ms-driver-remote-");
  Object.assign(b.env, s3.env);
  boxes.push(b);
  return b;
}

/** A sandbox whose cache is a copy of run 1's (every step a local hit unless forced). */
async function copyOfA(): Promise<Sandbox> {
  const b = await box();
  await cp(a.cache, b.cache, { recursive: true });
  return b;
}

/** Every file under the bucket (relative path -> sha256), read straight from the filesystem backend. */
async function bucketFiles(under = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const root = path.join(s3.bucketDir, under);
  for (const rel of (await readdir(root, { recursive: true }).catch(() => [] as string[])).sort()) {
    const full = path.join(root, rel);
    if ((await stat(full)).isFile())
      out.set(
        rel,
        createHash("sha256")
          .update(await readFile(full))
          .digest("hex"),
      );
  }
  return out;
}

const sourcesOf = (doc: RunDoc) => Object.fromEntries(doc.steps.map((s) => [s.step, s.source]));
const digestsOf = (doc: RunDoc) => doc.steps.slice(1).map((s) => Object.values(s.outputs)[0].digest);
const warnings = (stderr: string, text: string) => stderr.split("\n").filter((l) => l.includes(text)).length;

/** No file of a sandbox (cache, runs, logs) holds the secret. */
function assertNoSecret(b: Sandbox, ...texts: string[]): void {
  for (const t of texts) expect(t.includes(s3.secretAccessKey)).toBe(false);
  const grep = spawnSync("grep", ["-rqF", s3.secretAccessKey, b.root]);
  expect(grep.status, `the secret is in a file under ${b.root}`).toBe(1);
}

beforeAll(async () => {
  s3 = await startS3proxy();
  a = await box();
}, 15 * 60_000);

afterAll(async () => {
  await s3?.stop();
  for (const b of boxes) await b.dispose();
});

describe("a remote step cache on a real S3 server (s3proxy)", () => {
  it("run 1 computes and pushes; run 2 on an empty cache (read-only) gets etl, als, fm and keras from the remote, same outputs, nothing written", async () => {
    const r1 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--json", "--log-level", "debug"], a);
    expect(r1.code, r1.stderr.slice(-2000)).toBe(0);
    cold = JSON.parse(r1.stdout) as RunDoc;
    expect(sourcesOf(cold)).toEqual({
      download: "computed",
      etl: "computed",
      als: "computed",
      fm: "computed",
      keras: "computed",
      rank: "computed",
      ranking: "computed",
    });
    const entries = await listDir(path.join(s3.bucketDir, "team", "entries"));
    // download's entry names a file on this machine: never shared.
    expect(entries).toEqual(
      cold.steps
        .slice(1)
        .map((s) => `${s.key}.json`)
        .sort(),
    );
    const before = await bucketFiles();

    const b = await box();
    const r2 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--remote-cache-mode", "read", "--json"], b);
    expect(r2.code, r2.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r2.stdout) as RunDoc;
    expect(sourcesOf(doc)).toEqual({
      download: "computed",
      etl: "remote",
      als: "remote",
      fm: "remote",
      keras: "remote",
      rank: "remote",
      ranking: "remote",
    });
    expect(doc.steps.map((s) => s.cached)).toEqual([false, true, true, true, true, true, true]);
    expect(digestsOf(doc)).toEqual(digestsOf(cold));
    expect(doc.steps[2].metrics).toEqual(cold.steps[2].metrics);
    for (const s of doc.steps.slice(1)) expect(s.outputs[Object.keys(s.outputs)[0]].dir).toBe(path.join(b.cache, "objects", s.key));
    // Pulled entries are ordinary verified local entries: the next run serves them locally.
    const again = await runJson([...SMALL, "--remote-cache", REMOTE, "--remote-cache-mode", "read"], b);
    expect(sourcesOf(again)).toEqual({
      download: "local",
      etl: "local",
      als: "local",
      fm: "local",
      keras: "local",
      rank: "local",
      ranking: "local",
    });
    expect(await bucketFiles()).toEqual(before);

    const tracker = createTracker(b.mlruns);
    const child = await tracker.getRun(doc.steps[2].runId);
    expect(child.tags["ms.cache.source"]).toBe("remote");
    expect(child.tags["ms.cache.hit"]).toBe("true");
    expect(child.tags["ms.cache.producedByRun"]).toBe(cold.steps[2].runId);
    expect((await tracker.getRun(again.steps[2].runId)).tags["ms.cache.source"]).toBe("local");
    expect((await createTracker(a.mlruns).getRun(cold.steps[2].runId)).tags["ms.cache.source"]).toBe("computed");
    assertNoSecret(a, r1.stderr, r1.stdout);
    assertNoSecret(b, r2.stderr, r2.stdout);
  });

  it("ms cache ls --remote, pull KEY (a prefix) and push", async () => {
    const ls = await ms(["cache", "ls", "--remote", "--remote-cache", REMOTE, "--json"], a);
    expect(ls.code, ls.stderr).toBe(0);
    const listed = JSON.parse(ls.stdout) as { entries: { key: string; step: string; bytes: number }[] };
    expect(listed.entries.map((e) => e.step).sort()).toEqual(["als", "etl", "fm", "keras", "rank", "ranking"]);
    expect(listed.entries.every((e) => e.bytes > 0)).toBe(true);

    const c = await box();
    const als = cold.steps[2].key;
    const pull = await ms(["cache", "pull", als.slice(0, 10), "--remote-cache", REMOTE, "--json"], c);
    expect(pull.code, pull.stderr).toBe(0);
    expect(JSON.parse(pull.stdout).pulled).toMatchObject([{ key: als, step: "als", source: "remote" }]);
    const verify = await ms(["cache", "verify", "--json"], c);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: 1 });
    const missing = await ms(["cache", "pull", "0".repeat(64), "--remote-cache", REMOTE], c);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("no such entry");

    const push = await ms(["cache", "push", "--remote-cache", "s3://ms-cache/copied", "--json"], a);
    expect(push.code, push.stderr).toBe(0);
    const pushed = JSON.parse(push.stdout) as { pushed: { step: string }[]; skipped: { step: string }[] };
    expect(pushed.pushed.map((p) => p.step).sort()).toEqual(["als", "etl", "fm", "keras", "rank", "ranking"]);
    expect(pushed.skipped.map((p) => p.step)).toEqual(["download"]);
    expect((await listDir(path.join(s3.bucketDir, "copied", "entries"))).length).toBe(6);
    expect((await ms(["cache", "ls", "--remote"], a)).code).toBe(2); // no --remote-cache, no MS_REMOTE_CACHE
  });

  it("a blob damaged on the server is a miss reported once, recomputed, and repaired by the push (not by a read-only run)", async () => {
    const alsKey = cold.steps[2].key;
    const record = JSON.parse(await readFile(path.join(s3.bucketDir, "team", "entries", `${alsKey}.json`), "utf8")) as {
      files: { path: string; sha256: string }[];
    };
    const sha = record.files.find((f) => f.path === "user_factors.parquet")!.sha256;
    const blob = path.join(s3.bucketDir, "team", "blobs", "sha256", sha.slice(0, 2), sha);
    const h = await open(blob, "r+");
    const byte = Buffer.alloc(1);
    await h.read(byte, 0, 1, 100);
    byte[0] ^= 0xff;
    await h.write(byte, 0, 1, 100);
    await h.close();
    const sum = async () =>
      createHash("sha256")
        .update(await readFile(blob))
        .digest("hex");
    expect(await sum()).not.toBe(sha);

    const ro = await box();
    const r1 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--remote-cache-mode", "read", "--json"], ro);
    expect(r1.code, r1.stderr.slice(-2000)).toBe(0);
    expect(sourcesOf(JSON.parse(r1.stdout) as RunDoc)).toEqual({
      download: "computed",
      etl: "remote",
      als: "computed",
      fm: "remote",
      keras: "remote",
      rank: "remote",
      ranking: "remote",
    });
    expect(warnings(r1.stderr, "does not verify")).toBe(1);
    expect(r1.stderr).toContain(sha);
    expect(await sum()).not.toBe(sha); // read-only: not repaired

    const rw = await box();
    const r2 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--json"], rw);
    expect(r2.code, r2.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r2.stdout) as RunDoc;
    expect(sourcesOf(doc)).toEqual({
      download: "computed",
      etl: "remote",
      als: "computed",
      fm: "remote",
      keras: "remote",
      rank: "remote",
      ranking: "remote",
    });
    expect(digestsOf(doc)).toEqual(digestsOf(cold));
    expect(warnings(r2.stderr, "does not verify")).toBe(1);
    expect(await sum()).toBe(sha); // the push of the recomputed result put the blob back

    const next = await runJson([...SMALL, "--remote-cache", REMOTE], await box());
    expect(sourcesOf(next)).toEqual({
      download: "computed",
      etl: "remote",
      als: "remote",
      fm: "remote",
      keras: "remote",
      rank: "remote",
      ranking: "remote",
    });
  });

  it("two runs pushing the same key at once leave one valid entry", async () => {
    const [g, h] = [await copyOfA(), await copyOfA()];
    const args = ["run", ...SMALL, "--remote-cache", "s3://ms-cache/conc", "--force", "als", "--json"];
    const [rg, rh] = await Promise.all([finish(spawnMs(args, g)), finish(spawnMs(args, h))]);
    expect(rg.code, rg.stderr.slice(-2000)).toBe(0);
    expect(rh.code, rh.stderr.slice(-2000)).toBe(0);
    const alsKey = cold.steps[2].key;
    expect(await listDir(path.join(s3.bucketDir, "conc", "entries"))).toEqual([`${alsKey}.json`]);
    const c = await box();
    const pull = await ms(["cache", "pull", alsKey, "--remote-cache", "s3://ms-cache/conc", "--json"], c);
    expect(pull.code, pull.stderr).toBe(0);
    expect((await ms(["cache", "verify"], c)).code).toBe(0);
  });

  it("a server killed mid-upload leaves no entry record; the run ends with one warning and its local entry", async () => {
    const d = await copyOfA();
    const blobs = path.join(s3.bucketDir, "die", "blobs");
    const child = spawnMs(["run", ...SMALL, "--remote-cache", "s3://ms-cache/die", "--force", "etl", "--json"], d);
    const done = finish(child);
    let killed = false;
    const watcher = (async () => {
      const until = Date.now() + 120_000;
      while (!killed && child.exitCode === null && Date.now() < until) {
        const files = await readdir(blobs, { recursive: true }).catch(() => [] as string[]);
        if (files.some((f) => /[0-9a-f]{64}$/.test(f))) {
          await s3.kill();
          killed = true;
        } else await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const r = await done;
    await watcher;
    expect(killed).toBe(true);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(sourcesOf(JSON.parse(r.stdout) as RunDoc)).toEqual({
      download: "local",
      etl: "computed",
      als: "local",
      fm: "local",
      keras: "local",
      rank: "local",
      ranking: "local",
    });
    expect(await listDir(path.join(s3.bucketDir, "die", "entries"))).toEqual([]);
    expect(warnings(r.stderr, "continuing with the local cache only")).toBe(1);
    expect(await listDir(path.join(d.cache, "tmp"))).toEqual([]);
    await s3.restart();
  });

  it("a remote that is down, stalls, or refuses the credentials, is one warning; --remote-cache-required makes it exit 6", async () => {
    const down = await copyOfA();
    const closed = { AWS_ENDPOINT_URL: `http://127.0.0.1:${await freePort()}` };
    const r1 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--force", "als", "--json"], down, closed);
    expect(r1.code, r1.stderr.slice(-2000)).toBe(0);
    expect(warnings(r1.stderr, "continuing with the local cache only")).toBe(1);

    const wrong = `wrong-${s3.secretAccessKey.slice(-8)}-secret`;
    const denied = await copyOfA();
    const r2 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--force", "als", "--json", "--log-level", "debug"], denied, {
      AWS_SECRET_ACCESS_KEY: wrong,
    });
    expect(r2.code, r2.stderr.slice(-2000)).toBe(0);
    expect(warnings(r2.stderr, "continuing with the local cache only")).toBe(1);
    expect(r2.stderr).toContain("access refused");
    expect(r2.stderr.includes(wrong)).toBe(false);
    expect(spawnSync("grep", ["-rqF", wrong, denied.root]).status).toBe(1);

    // A server that accepts and never answers: bounded by the timeouts, then the same one warning.
    const sockets = new Set<net.Socket>();
    const stalled = net.createServer((socket) => sockets.add(socket.on("data", () => undefined))).listen(0, "127.0.0.1");
    await new Promise((resolve) => stalled.once("listening", resolve));
    try {
      const slow = await copyOfA();
      const endpoint = `http://127.0.0.1:${(stalled.address() as net.AddressInfo).port}`;
      const r = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--force", "als", "--json"], slow, {
        AWS_ENDPOINT_URL: endpoint,
        MS_REMOTE_CACHE_TIMEOUT_MS: "1000",
      });
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      expect(warnings(r.stderr, "continuing with the local cache only")).toBe(1);
      expect(r.stderr).toContain("timed out");
    } finally {
      for (const socket of sockets) socket.destroy();
      stalled.close();
    }

    const req = await box();
    const r3 = await ms(["run", ...SMALL, "--remote-cache", REMOTE, "--remote-cache-required"], req, closed);
    expect(r3.code).toBe(6);
    expect(r3.stderr).toContain("--remote-cache-required");
    expect(r3.stderr).toContain("s3://ms-cache/team/");
    expect(await listDir(path.join(req.cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(req.cache, "locks"))).toEqual([]);
  });

  it("Ctrl-C during a run with a remote cache leaves no remote entry record and no local leftovers", async () => {
    const e = await copyOfA();
    const child = spawnMs(["run", ...SMALL, "--remote-cache", "s3://ms-cache/sigint", "--force", "etl", "--force", "als"], e);
    let sent = false;
    child.stderr?.setEncoding("utf8").on("data", (t: string) => {
      if (!sent && t.includes("als: computing")) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const r = await finish(child);
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    const entries = await listDir(path.join(s3.bucketDir, "sigint", "entries"));
    expect(entries.includes(`${cold.steps[2].key}.json`)).toBe(false);
    expect(await listDir(path.join(e.cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(e.cache, "locks"))).toEqual([]);
  });
});

/** `ms ARGS`, killed (and the test failed) when it has not ended within `limitMs`: a hang is a failure, not a stuck suite. */
async function msWithin(limitMs: number, args: readonly string[], b: Sandbox, env: NodeJS.ProcessEnv = {}) {
  const child = spawnMs(args, b, env);
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const started = performance.now();
  const r = await finish(child);
  clearTimeout(timer);
  expect(r.signal, `ms ${args.join(" ")} was still running after ${limitMs} ms`).toBeNull();
  return { ...r, seconds: (performance.now() - started) / 1000 };
}

describe("a hostile or broken remote (issue 24)", () => {
  const HOSTILE = "s3://ms-cache/hostile";
  const keyFiles = { writer: "", reader: "" };

  beforeAll(async () => {
    const push = await ms(["cache", "push", "--remote-cache", HOSTILE], a);
    expect(push.code, push.stderr).toBe(0);
    const pair = generateKeyPairSync("ed25519");
    keyFiles.writer = path.join(a.root, "writer.pem");
    keyFiles.reader = path.join(a.root, "reader.pub");
    await writeFile(keyFiles.writer, pair.privateKey.export({ type: "pkcs8", format: "pem" }));
    await writeFile(keyFiles.reader, pair.publicKey.export({ type: "spki", format: "pem" }));
  });

  it("a blob body that stalls halfway hangs neither ms run nor ms cache pull (MS_REMOTE_CACHE_TIMEOUT_MS=3000)", async () => {
    const proxy = await startStallProxy(s3.endpoint);
    try {
      const env = { AWS_ENDPOINT_URL: proxy.endpoint, MS_REMOTE_CACHE_TIMEOUT_MS: "3000" };
      const r = await msWithin(90_000, ["run", ...SMALL, "--remote-cache", HOSTILE, "--json"], await box(), env);
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      expect(sourcesOf(JSON.parse(r.stdout) as RunDoc)).toEqual({
        download: "computed",
        etl: "computed",
        als: "computed",
        fm: "computed",
        keras: "computed",
        rank: "computed",
        ranking: "computed",
      });
      expect(warnings(r.stderr, "continuing with the local cache only")).toBe(1);
      expect(r.stderr).toMatch(/timed out while downloading .*no byte for 3000 ms/);
      expect(proxy.stalled()).toBeGreaterThan(0);

      const c = await box();
      const pull = await msWithin(60_000, ["cache", "pull", cold.steps[2].key, "--remote-cache", HOSTILE], c, env);
      expect(pull.code, pull.stderr).toBe(6);
      expect(pull.stderr).toContain("timed out");
      expect(pull.seconds).toBeLessThan(30);
      expect(await listDir(path.join(c.cache, "tmp"))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 180_000);

  it("a full local disk while pulling is storage, exit 8 (not 'remote cache unreachable', exit 6)", async (ctx) => {
    const b = await box();
    const disk = path.join(b.root, "small-disk");
    await mkdir(disk);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", disk], { stdio: "pipe" });
    } catch (error) {
      ctx.skip(`cannot mount a tmpfs here (needs root): ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`);
    }
    try {
      const etl = cold.steps[1].key;
      const r = await ms(["cache", "pull", etl, "--remote-cache", HOSTILE, "--cache-dir", disk], b);
      expect(r.code, r.stderr).toBe(8);
      expect(r.stderr).toContain("ENOSPC");
      expect(r.stderr).not.toContain("unreachable");
    } finally {
      execFileSync("umount", [disk]);
    }
  });

  it("an entry of als_reg_param=5, seed=7 put under the key of the defaults is refused once, recomputed and replaced", async () => {
    const other = await runJson([...SMALL, "-P", "als_reg_param=5", "-P", "seed=7", "--remote-cache", HOSTILE], await box());
    const alsKey = cold.steps[2].key;
    const poisoned = other.steps[2].key;
    expect(poisoned).not.toBe(alsKey);
    const entries = path.join(s3.bucketDir, "hostile", "entries");
    const record = JSON.parse(await readFile(path.join(entries, `${poisoned}.json`), "utf8")) as { entry: object };
    await writeFile(
      path.join(entries, `${alsKey}.json`),
      JSON.stringify({ ...record, key: alsKey, entry: { ...record.entry, key: alsKey } }),
    );

    const r = await ms(["run", ...SMALL, "--remote-cache", HOSTILE, "--json"], await box());
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r.stdout) as RunDoc;
    expect(sourcesOf(doc)).toEqual({
      download: "computed",
      etl: "remote",
      als: "computed",
      fm: "remote",
      keras: "remote",
      rank: "remote",
      ranking: "remote",
    });
    expect(digestsOf(doc)).toEqual(digestsOf(cold));
    expect(warnings(r.stderr, "does not verify")).toBe(1);
    expect(r.stderr).toContain(`make the key ${poisoned}, not ${alsKey}`);
    const repaired = JSON.parse(await readFile(path.join(entries, `${alsKey}.json`), "utf8")) as { entry: { params: object } };
    expect(repaired.entry.params).toMatchObject({ als_reg_param: 0.1, seed: 42 });
  });

  it("--remote-cache-signing-key: a writer's signed entries are served to readers with the public key; unsigned ones never are", async () => {
    const signed = "s3://ms-cache/signed";
    const push = await ms(["cache", "push", "--remote-cache", signed, "--remote-cache-signing-key", keyFiles.writer], a);
    expect(push.code, push.stderr).toBe(0);
    const reader = ["--remote-cache-signing-key", keyFiles.reader];
    const hit = await runJson([...SMALL, "--remote-cache", signed, ...reader], await box());
    expect(sourcesOf(hit)).toEqual({
      download: "computed",
      etl: "remote",
      als: "remote",
      fm: "remote",
      keras: "remote",
      rank: "remote",
      ranking: "remote",
    });

    const r = await ms(["run", ...SMALL, "--remote-cache", HOSTILE, "--json"], await box(), {
      MS_REMOTE_CACHE_SIGNING_KEY: keyFiles.reader,
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(sourcesOf(JSON.parse(r.stdout) as RunDoc)).toEqual({
      download: "computed",
      etl: "computed",
      als: "computed",
      fm: "computed",
      keras: "computed",
      rank: "computed",
      ranking: "computed",
    });
    expect(warnings(r.stderr, "is not signed")).toBe(6);

    const readerPush = await ms(["cache", "push", "--remote-cache", signed, ...reader], a);
    expect(readerPush.code).toBe(2);
    expect(readerPush.stderr).toContain("public key only");
    const missing = await ms(["run", ...SMALL, "--remote-cache", signed, "--remote-cache-signing-key", "/nonexistent.pem"], await box());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--remote-cache-signing-key");
  });
});
