/**
 * Temporary: the session API over the current CacheStore, until the verified cache lands.
 */
import type { Manifest } from "@ms/contracts";
import { readManifest } from "@ms/contracts";
import type { CacheStore, EntryInfo } from "./storage.js";

export interface ComputeRequest {
  key: string;
  step: string;
  info: Omit<EntryInfo, "key" | "step" | "createdAt" | "lastUsedAt" | "outputDigest">;
  force: boolean;
  compute(dir: string): Promise<void>;
  stillValid?(hit: { manifest: Manifest }): Promise<boolean>;
  signal?: AbortSignal;
  onWait?(holder: { pid: number; hostname: string }): void;
  onDamaged?(key: string, problems: string[]): void;
}

export interface Outcome {
  cached: boolean;
  dir: string;
  manifest: Manifest;
  entry: EntryInfo;
}

export interface CacheSession {
  getOrCompute(req: ComputeRequest): Promise<Outcome>;
  close(): Promise<void>;
}

export function openSession(store: CacheStore): CacheSession {
  const warned = new Set<string>();
  const usable = async (req: ComputeRequest) => {
    const check = await store.checkEntry(req.key);
    if (check.status === "damaged") {
      if (!warned.has(req.key)) req.onDamaged?.(req.key, check.problems);
      warned.add(req.key);
      return undefined;
    }
    if (check.status !== "hit") return undefined;
    if (req.stillValid && !(await req.stillValid(check))) return undefined;
    return check;
  };
  return {
    async getOrCompute(req) {
      let hit = req.force ? undefined : await usable(req);
      if (!hit) {
        const got = await store.acquire(req.key, async () => (req.force ? undefined : usable(req)), (h) => req.onWait?.(h), req.signal);
        if ("value" in got) hit = got.value;
        else {
          try {
            if (!req.force) hit = await usable(req);
            if (!hit) {
              const temp = store.tempPath(req.step);
              try {
                await req.compute(temp.dir);
                if (req.signal?.aborted) throw req.signal.reason;
                const manifest = await readManifest(temp.dir);
                const now = new Date().toISOString();
                const entry: EntryInfo = { ...req.info, key: req.key, step: req.step, outputDigest: manifest.digest, createdAt: now, lastUsedAt: now };
                const dir = await store.publish(temp.dir, entry);
                return { cached: false, dir, manifest, entry };
              } finally {
                await temp.discard();
              }
            }
          } finally {
            await got.lock.release();
          }
        }
      }
      await store.touch(hit.entry);
      return { cached: true, dir: hit.dir, manifest: hit.manifest, entry: hit.entry };
    },
    async close() {},
  };
}
