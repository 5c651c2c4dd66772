import net from "node:net";
import { RemoteCache } from "./dist/index.js";
await import("@aws-sdk/client-s3");
const srv = net.createServer((s) => { s.on("data", () => {}); }).listen(0, "127.0.0.1");
await new Promise((r) => srv.once("listening", r));
const port = srv.address().port;
const logger = { warn: (o, m) => console.log("WARN", m), info() {}, debug() {}, error() {}, child() { return logger; } };
const rc = new RemoteCache({ url: "s3://ms-cache/x", endpoint: `http://127.0.0.1:${port}`, env: { AWS_ACCESS_KEY_ID: "k", AWS_SECRET_ACCESS_KEY: "s" }, timeoutMs: 20000, logger });
const ac = new AbortController();
setTimeout(() => ac.abort(new Error("user abort")), 800);
const t0 = Date.now();
try { const r = await rc.fetchEntry("a".repeat(64), "/tmp/s3t/never", ac.signal); console.log(r); } catch (e) { console.log("threw", e.message); }
console.log(Date.now() - t0, "ms");
srv.close(); process.exit(0);
