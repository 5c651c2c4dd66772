/**
 * The load generators autocannon does not give: clients that misbehave at the socket level (a
 * 50 MB body, a client that sends part of its body and stalls), a request held open across a
 * SIGTERM, and an RSS sampler of the server process. Every socket is bounded in time.
 */
import { readFileSync } from "node:fs";
import net from "node:net";

/** The status code of the first response line, or the socket's failure. */
function statusOf(data) {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
  return m ? Number(m[1]) : undefined;
}

/**
 * Sends a POST with a body of `bytes` bytes (declared in content-length) in 64 KiB chunks until
 * the server answers or closes; resolves with the status (or "reset" / "timeout").
 */
export function bigBody(port, bytes, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    let sent = 0;
    const chunk = Buffer.alloc(65_536, 0x20);
    const done = (status) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(statusOf(data) ?? "timeout"), timeoutMs);
    socket.on("data", (d) => {
      data += d.toString();
      if (statusOf(data)) done(statusOf(data));
    });
    socket.on("error", () => done(statusOf(data) ?? "reset"));
    socket.on("close", () => done(statusOf(data) ?? "reset"));
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return socket.once("drain", pump);
      }
    };
    socket.on("connect", () => {
      socket.write(
        `POST /invocations HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: ${bytes}\r\n\r\n{"inputs": [`,
      );
      sent = 12;
      pump();
    });
  });
}

/**
 * A request whose body is sent in part now; `finish()` sends the rest. `response` resolves with
 * the status (a stalled one gets 408 from the server's request timeout).
 */
export function partialRequest(port, body, sentNow, timeoutMs = 60_000) {
  const socket = net.connect(port, "127.0.0.1");
  let data = "";
  const response = new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("timeout");
    }, timeoutMs);
    const end = () => {
      clearTimeout(timer);
      resolve(statusOf(data) ?? "reset");
    };
    socket.on("data", (d) => (data += d.toString()));
    socket.on("close", end);
    socket.on("error", end);
  });
  socket.write(
    `POST /invocations HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, sentNow)}`,
  );
  return { response, finish: () => socket.write(body.slice(sentNow)) };
}

/** Samples a process's resident set size (MiB) every `everyMs` until `stop()`; returns the samples. */
export function sampleRss(pid, everyMs = 1000) {
  const samples = [];
  const read = () => {
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
      if (kb) samples.push(kb / 1024);
    } catch {
      // the process is gone
    }
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return samples;
    },
  };
}
