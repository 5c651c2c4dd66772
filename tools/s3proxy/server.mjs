/**
 * Starts a real s3proxy (the jar of ensure.sh, filesystem backend) on 127.0.0.1 and a free port,
 * with a bucket made for the caller: the S3 server of the remote step cache's tests and benchmark.
 * Everything is bounded: the fetch (ensure.sh's own timeouts), the start (60 s), the stop (SIGTERM,
 * then SIGKILL after 5 s). `kill()` ends it at once (SIGKILL), `restart()` brings it back on the
 * same port and data, so a test can take the server away mid-transfer.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ENSURE = fileURLToPath(new URL("./ensure.sh", import.meta.url));

/** The jar's path (fetched once into ~/.cache/ms/s3proxy). */
export function ensureS3proxyJar() {
  return new Promise((resolve, reject) => {
    execFile("bash", [ENSURE], { timeout: 15 * 60_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${ENSURE} failed: ${stderr || error.message}`));
      else resolve(stdout.trim().split("\n").pop());
    });
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * @param {{ bucket?: string, prefix?: string }} [options]
 */
export async function startS3proxy(options = {}) {
  const jar = await ensureS3proxyJar();
  const dir = await mkdtemp(path.join(tmpdir(), options.prefix ?? "ms-s3proxy-"));
  const data = path.join(dir, "data");
  const bucket = options.bucket ?? "ms-cache";
  await mkdir(path.join(data, bucket), { recursive: true }); // the filesystem backend's bucket is a directory
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = `ms-test-${randomBytes(4).toString("hex")}`;
  const secretAccessKey = `ms-secret-${randomBytes(12).toString("hex")}`;
  const conf = path.join(dir, "s3proxy.conf");
  await writeFile(
    conf,
    [
      `s3proxy.endpoint=${endpoint}`,
      "s3proxy.authorization=aws-v2-or-v4",
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      "jclouds.provider=filesystem",
      `jclouds.filesystem.basedir=${data}`,
      "",
    ].join("\n"),
  );
  let child;
  let log = "";
  const launch = async () => {
    log = "";
    child = spawn("java", ["-Xmx256m", "-jar", jar, "--properties", conf], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    const keep = (b) => (log = (log + b.toString()).slice(-20_000));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const started = Date.now();
    while (!(await portOpen(port))) {
      if (child.exitCode !== null) throw new Error(`s3proxy exited with ${child.exitCode}:\n${log}`);
      if (Date.now() - started > 60_000) {
        await stop();
        throw new Error(`s3proxy did not listen on ${endpoint} within 60 s:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const signalGroup = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once("exit", r));
    signalGroup("SIGTERM");
    const t = setTimeout(() => signalGroup("SIGKILL"), 5_000);
    await gone;
    clearTimeout(t);
  };
  await launch();
  return {
    endpoint,
    bucket,
    dataDir: data,
    /** The bucket's directory in the filesystem backend (objects are files under their keys). */
    bucketDir: path.join(data, bucket),
    accessKeyId,
    secretAccessKey,
    /** What a client needs: the standard AWS variables. */
    env: { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: "us-east-1" },
    log: () => log,
    /** SIGKILL now (a server that dies mid-transfer). */
    kill: async () => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      signalGroup("SIGKILL");
      await gone;
    },
    restart: async () => {
      await stop();
      await launch();
    },
    stop: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
