/**
 * A loopback HTTP proxy in front of an S3 server for tests: every request goes through unchanged
 * (headers included, so SigV4 signatures still hold), except the responses `stall` chooses (by
 * default every blob GET of the remote cache), of which it sends the status, the headers and half
 * of the body, then nothing more on an open socket: a server that stalls halfway through a body.
 */
import http from "node:http";

const isBlobGet = (req) => req.method === "GET" && /\/blobs\/sha256\//.test(req.url ?? "");

/** Starts the proxy on 127.0.0.1 and a free port in front of `target` (http://host:port). */
export async function startStallProxy(target, options = {}) {
  const stall = options.stall ?? isBlobGet;
  const upstream = new URL(target);
  const sockets = new Set();
  let stalled = 0;
  const server = http.createServer((req, res) => {
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (!stall(req) || (up.statusCode ?? 500) >= 300) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks = [];
        up.on("data", (c) => chunks.push(c));
        up.on("end", () => {
          const body = Buffer.concat(chunks);
          stalled++;
          res.writeHead(up.statusCode ?? 200, up.headers);
          res.write(body.subarray(0, Math.floor(body.length / 2)));
          // ...and never more: the socket stays open and silent until the client gives up.
        });
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    /** How many bodies were cut halfway so far. */
    stalled: () => stalled,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
