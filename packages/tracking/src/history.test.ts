/**
 * A step's metric history kept beside its cached result: written with its digest, read back only
 * when the digest and the schema agree, and replayed with the original spacing ending now.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CorruptArtifactError, digestOf } from "@ms/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HISTORY_FILE, readHistory, replay, writeHistory } from "./index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "ms-history-"));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe("metric history", () => {
  it("round-trips points, and replays them spaced as they were, the last one now", async () => {
    const digest = await writeHistory(dir, [
      { key: "loss", value: 0.9, step: 1, timestamp: 1_000 },
      { key: "loss", value: 0.5, step: 2, timestamp: 1_600 },
    ]);
    const points = await readHistory(dir, digest);
    expect(points).toEqual([
      { key: "loss", value: 0.9, step: 1, offsetMs: 0 },
      { key: "loss", value: 0.5, step: 2, offsetMs: 600 },
    ]);
    expect(replay(points ?? [], 10_000).map((m) => m.timestamp)).toEqual([9_400, 10_000]);
    expect(await readHistory(dir, undefined)).toBeUndefined();
  });

  it("refuses a file that is not the one recorded, or not a history, naming the file", async () => {
    await writeHistory(dir, [{ key: "loss", value: 1, step: 0, timestamp: 5 }]);
    const file = path.join(dir, HISTORY_FILE);
    await expect(readHistory(dir, "sha256:0000")).rejects.toThrow(CorruptArtifactError);
    await writeFile(file, '{"metrics": 3}\n');
    await expect(readHistory(dir, digestOf('{"metrics": 3}\n'))).rejects.toThrow(`${file}: metrics`);
  });
});
