/**
 * The bounds on a response body, over real loopback HTTP: a body that stalls halfway ends at the
 * idle bound, one that trickles a byte at a time ends at the total bound, and one longer than
 * allowed (chunked, no Content-Length) is stopped at the first byte over with its socket closed.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BodyTimeout, BodyTooLarge, readBody, writeBody } from "./body.js";

let server: http.Server;
let base: string;
let dir: string;
const timers = new Set<NodeJS.Timeout>();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ms-body-"));
  server = http.createServer((req, res) => {
    res.writeHead(200);
    if (req.url === "/half") res.write(Buffer.alloc(1000, 1)); // ...and never more
    if (req.url === "/trickle") {
      const t = setInterval(() => res.write("x"), 50);
      timers.add(t);
      res.on("close", () => clearInterval(t));
    }
    if (req.url === "/endless") {
      const t = setInterval(() => res.write(Buffer.alloc(64 << 10)), 1);
      timers.add(t);
      res.on("close", () => clearInterval(t));
    }
    if (req.url === "/ok") res.end("hello");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const get = (p: string) => new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${base}${p}`, resolve).on("error", reject));

describe("bounded bodies", () => {
  it("a body that stalls halfway ends at the idle bound", async () => {
    const started = performance.now();
    const res = await get("/half");
    const target = path.join(dir, "half");
    await expect(writeBody(res, target, { what: "blob", maxBytes: 2000, idleMs: 300 })).rejects.toThrow(BodyTimeout);
    await expect(writeBody(await get("/half"), `${target}2`, { what: "blob", maxBytes: 2000, idleMs: 300 })).rejects.toThrow(
      /blob: no byte for 300 ms after 1000 bytes/,
    );
    expect(performance.now() - started).toBeLessThan(5000);
    expect(res.destroyed).toBe(true);
  });

  it("a body that trickles (a byte every 50 ms) ends at the total bound", async () => {
    const res = await get("/trickle");
    await expect(readBody(res, { what: "record", maxBytes: 1 << 20, idleMs: 300, totalMs: 600 })).rejects.toThrow(/not read within 600 ms/);
  });

  it("a body longer than allowed is stopped at the first byte over, and its socket closed", async () => {
    const res = await get("/endless");
    const error = await readBody(res, { what: "record", maxBytes: 100_000, idleMs: 5000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLarge);
    expect(String(error)).toMatch(/record: more than 100000 bytes/);
    expect(res.destroyed).toBe(true);
  });

  it("a body within its bounds is written whole, with its sha256", async () => {
    const target = path.join(dir, "ok");
    const got = await writeBody(await get("/ok"), target, { what: "blob", maxBytes: 5, idleMs: 1000 });
    expect(got).toEqual({ bytes: 5, sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" });
    expect(await readFile(target, "utf8")).toBe("hello");
  });
});
