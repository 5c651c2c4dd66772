/**
 * What `ms run` and the step list promise about the remote cache: which steps are shared, and the
 * flags `ms run` refuses without --remote-cache (or with a bad mode or URL), before any run.
 */
import { describe, expect, it } from "vitest";
import { PIPELINE } from "./steps.js";
import { ms, sandbox } from "./__tests__/harness.js";

describe("shareable steps", () => {
  it("download names a file on this machine and is never shared; etl, als and keras are", () => {
    expect(Object.fromEntries(PIPELINE.map((s) => [s.name, s.shareable]))).toEqual({
      download: false,
      etl: true,
      als: true,
      fm: true,
      keras: true,
      rank: true,
    });
  });
});

describe("ms run --remote-cache flags", () => {
  it("ms run refuses --remote-cache-mode without --remote-cache, and a bad mode, before any run (exit 2)", async () => {
    const box = await sandbox();
    try {
      const r1 = await ms(["run", "--dataset", "synthetic", "--remote-cache-mode", "read"], box);
      expect(r1.code).toBe(2);
      expect(r1.stderr).toContain("--remote-cache");
      const r2 = await ms(["run", "--dataset", "synthetic", "--remote-cache", "s3://ms-cache/x", "--remote-cache-mode", "sometimes"], box);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toContain("--remote-cache-mode");
      const r3 = await ms(["run", "--dataset", "synthetic", "--remote-cache", "ftp://x"], box);
      expect(r3.code).toBe(2);
    } finally {
      await box.dispose();
    }
  });
});
