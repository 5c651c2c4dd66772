/**
 * Where `ms run` looks for a release: only in the mirror given by --data-dir or MS_DATASETS_DIR
 * (never a guessed `../shared/movielens`), and a mirror without the asked release is said to be
 * so before anything is downloaded (here from a loopback address where nothing listens: exit 6).
 * `--url` downloads any MovieLens-layout zip (from a loopback server here).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
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

describe("ms run --url", () => {
  it("downloads a MovieLens-layout zip from the URL, verifies it against URL.md5 and runs every step on it", async () => {
    // A small release-shaped archive: the synthetic generator's ratings, zipped by Python's zipfile.
    const gen = await ms(
      [
        "run",
        "--dataset",
        "synthetic",
        "-P",
        "synthetic_rows=3000",
        "-P",
        "als_max_iter=2",
        "-P",
        "als_rank=4",
        "-P",
        "keras_features=factors",
        "-P",
        "keras_epochs=1",
        "--no-report",
        "--json",
      ],
      box,
    );
    expect(gen.code, gen.stderr).toBe(0);
    const csv = (JSON.parse(gen.stdout) as { steps: { outputs: { ratings?: { file?: string } } }[] }).steps[0].outputs.ratings!.file!;
    const site = path.join(box.root, "site");
    await mkdir(site, { recursive: true });
    const zip = path.join(site, "my-release.zip");
    execFileSync("python3", [
      "-c",
      "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.write(sys.argv[2], 'my-release/ratings.csv'); z.close()",
      zip,
      csv,
    ]);
    await writeFile(
      `${zip}.md5`,
      `${createHash("md5")
        .update(await readFile(zip))
        .digest("hex")}  my-release.zip\n`,
    );
    const server = createServer((req, res) => {
      const file = path.join(site, path.basename(req.url ?? ""));
      readFile(file).then(
        (body) => res.writeHead(200, { "content-length": body.length }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/my-release.zip`;
      const r = await ms(
        [
          "run",
          "--url",
          url,
          "-P",
          "max_row_limit=-1",
          "-P",
          "als_max_iter=2",
          "-P",
          "als_rank=4",
          "-P",
          "keras_features=factors",
          "-P",
          "keras_epochs=1",
          "--no-report",
          "--json",
        ],
        box,
      );
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { steps: { step: string; cached: boolean; metrics: Record<string, number> }[] };
      expect(doc.steps.map((s) => s.step)).toEqual(["download", "etl", "als", "fm", "keras", "rank"]);
      expect(doc.steps[1].metrics.rows).toBe(3000);
      expect(r.stderr).toContain("download: archive verified");
      const both = await ms(["run", "--url", url, "--dataset", "ml-100k"], box);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain("--url");
    } finally {
      server.close();
    }
  });
});
