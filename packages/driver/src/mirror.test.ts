/**
 * Where `ms run` looks for a release: only in the mirror given by --data-dir or MS_DATASETS_DIR
 * (never a guessed `../shared/movielens`), and a mirror without the asked release is said to be
 * so before anything is downloaded (here from a loopback address where nothing listens: exit 6).
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { freePort } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ms, sandbox, type Sandbox } from "./__tests__/harness.js";

let box: Sandbox;
beforeAll(async () => {
  box = await sandbox("ms-driver-mirror-");
});
afterAll(async () => box.dispose());

describe("ms run and a local mirror", () => {
  it("a mirror without the release: says so, then downloads (and fails offline with exit 6)", async () => {
    const mirror = path.join(box.root, "mirror");
    await mkdir(path.join(mirror, "ml-latest-small"), { recursive: true });
    const base = `http://127.0.0.1:${await freePort()}`;
    const r = await ms(["run", "--dataset", "ml-100k", "--data-dir", mirror, "--no-report"], box, { MS_MOVIELENS_BASE_URL: base });
    expect(r.code).toBe(6);
    const said = r.stderr.indexOf("ml-100k not in the mirror, downloading");
    expect(said, r.stderr).toBeGreaterThan(-1);
    expect(r.stderr.indexOf(base)).toBeGreaterThan(said);
  });

  it("without --data-dir or MS_DATASETS_DIR no mirror is guessed: a shared/movielens beside the working directory is not used", async () => {
    const cwdMirror = path.join(box.root, "shared", "movielens", "ml-latest-small");
    await mkdir(cwdMirror, { recursive: true });
    const base = `http://127.0.0.1:${await freePort()}`;
    const r = await ms(["run", "--no-report"], box, { MS_MOVIELENS_BASE_URL: base });
    expect(r.code).toBe(6);
    expect(r.stderr).not.toContain("using the local mirror");
    expect(r.stderr).toContain("--data-dir");
  });
});
