/**
 * Killed and concurrent drivers. `kill -9` at points inside each step, then a rerun: it completes,
 * reuses every step that had finished, takes over the dead driver's lock, and leaves a cache that
 * `ms cache verify` finds clean with no temp directories or locks. Two drivers started together
 * on an empty cache compute each step once.
 */
import { createTracker } from "@ms/tracking";
import { afterAll, describe, expect, it } from "vitest";
import path from "node:path";
import { finish, killOn, listDir, ms, runJson, sandbox, spawnMs, type RunDoc, type Sandbox } from "./__tests__/harness.js";

/** Big enough that each step takes a moment, so the kill lands inside it. */
const MEDIUM = [
  "--dataset",
  "synthetic",
  "-P",
  "synthetic_rows=60000",
  "-P",
  "als_max_iter=8",
  "-P",
  "als_rank=8",
  "-P",
  "keras_epochs=3",
  "-P",
  "keras_patience=5",
];
const STEP_NAMES = ["download", "etl", "als", "fm", "keras", "rank"];

const boxes: Sandbox[] = [];
afterAll(async () => {
  for (const b of boxes) await b.dispose();
});

const KILL_POINTS: { step: string; marker: string }[] = [
  { step: "download", marker: "download: computing" },
  { step: "etl", marker: "etl: converting ratings to Parquet" },
  { step: "als", marker: "als: ratings loaded and laid out" },
  { step: "fm", marker: "fm: fit 1/4 (fold 1)" },
  { step: "keras", marker: "keras: training" },
  { step: "keras", marker: "keras: epoch 1/3" },
];

describe("kill -9 inside a step, then rerun", () => {
  for (const point of KILL_POINTS) {
    it(`killed at "${point.marker}": the rerun completes, reuses finished steps and verify is clean`, async () => {
      const box = await sandbox("ms-crash-");
      boxes.push(box);
      const child = spawnMs(["run", ...MEDIUM], box);
      const killed = await killOn(child, point.marker);
      expect(killed.seen).toBe(true);
      expect(child.signalCode).toBe("SIGKILL");
      const finished = STEP_NAMES.filter((s) => killed.stderr.includes(`"${s}: step finished and cached"`));
      expect(finished).not.toContain(point.step);
      // The dead driver still "holds" the lock of the step it was in.
      expect(await listDir(path.join(box.cache, "locks"))).toHaveLength(1);

      const rerun: RunDoc = await runJson(MEDIUM, box);
      for (const s of rerun.steps) expect(s.cached, s.step).toBe(finished.includes(s.step));
      expect(await listDir(path.join(box.cache, "tmp"))).toEqual([]);
      expect(await listDir(path.join(box.cache, "locks"))).toEqual([]);
      const verify = await ms(["cache", "verify", "--json"], box);
      expect(verify.code).toBe(0);
      expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: 5 });
      // And the cache is now complete.
      const warm = await runJson(MEDIUM, box);
      expect(warm.steps.every((s) => s.cached)).toBe(true);
    });
  }
});

describe("Ctrl-C", () => {
  it("SIGINT inside als: exit 130, the runs end KILLED, the lock and temp files are cleaned up", async () => {
    const box = await sandbox("ms-sigint-");
    boxes.push(box);
    const args = ["run", "--dataset", "synthetic", "-P", "synthetic_rows=300000", "-P", "max_row_limit=-1", "-P", "als_max_iter=50"];
    const child = spawnMs(args, box);
    const done = finish(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("als: ratings loaded") && !child.killed) child.kill("SIGINT");
    });
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/interrupted/);
    expect(await listDir(path.join(box.cache, "tmp"))).toEqual([]);
    expect(await listDir(path.join(box.cache, "locks"))).toEqual([]);
    const tracker = createTracker(box.mlruns);
    const exp = await tracker.getExperimentByName("Default");
    const runs = (await tracker.searchRuns({ experimentIds: [exp!.experimentId] })).runs;
    const byName = Object.fromEntries(runs.map((x) => [x.info.runName, x.info.status]));
    expect(byName).toMatchObject({ "ms-run": "KILLED", als: "KILLED", etl_data: "FINISHED", load_raw_data: "FINISHED" });
    // The finished steps are reused by the next run.
    const rerun = await runJson(args.slice(1).concat(["-P", "als_max_iter=2", "-P", "keras_epochs=1"]), box);
    expect(rerun.steps.map((s) => s.cached)).toEqual([true, true, false, false, false]);
  });
});

describe("SIGTERM during a long ALS half-sweep", () => {
  it("rank 300: ms run exits 130 within 2 s and leaves no lock, lease or temp directory", async () => {
    const box = await sandbox("ms-sigterm-");
    boxes.push(box);
    const args = [
      "run",
      "--dataset",
      "synthetic",
      "-P",
      "synthetic_rows=60000",
      "-P",
      "max_row_limit=-1",
      "-P",
      "als_rank=300",
      "-P",
      "als_max_iter=5",
      "-P",
      "als_num_threads=1",
      "--log-artifacts",
      "none",
    ];
    const child = spawnMs(args, box);
    const done = finish(child);
    let stderr = "";
    let sentAt = 0;
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (!sentAt && stderr.includes("als: ratings loaded")) {
        sentAt = -1;
        // Well inside the first half-sweep (rank 300 solves take seconds), not between steps.
        setTimeout(() => {
          sentAt = Date.now();
          child.kill("SIGTERM");
        }, 1500);
      }
    });
    const r = await done;
    const exitedAfterMs = Date.now() - sentAt;
    expect(sentAt, r.stderr.slice(-1500)).toBeGreaterThan(0);
    expect(r.code).toBe(130);
    expect(exitedAfterMs).toBeLessThan(2000);
    expect(r.stderr).not.toMatch(/als: iteration/);
    for (const dir of ["tmp", "locks", "leases"]) expect(await listDir(path.join(box.cache, dir))).toEqual([]);
    expect((await listDir(path.join(box.cache, "objects"))).length).toBe(2);
  });
});

describe("concurrent drivers", () => {
  it("two ms run on an empty cache compute each step once; the other waits and reuses it", async () => {
    const box = await sandbox("ms-concurrent-");
    boxes.push(box);
    const [a, b] = await Promise.all([
      finish(spawnMs(["run", ...MEDIUM, "--json"], box)),
      finish(spawnMs(["run", ...MEDIUM, "--json"], box)),
    ]);
    expect(a.code, a.stderr.slice(-2000)).toBe(0);
    expect(b.code, b.stderr.slice(-2000)).toBe(0);
    const da = JSON.parse(a.stdout) as RunDoc;
    const db = JSON.parse(b.stdout) as RunDoc;
    for (let i = 0; i < 5; i++) {
      expect(da.steps[i].key).toBe(db.steps[i].key);
      const computed = [da.steps[i].cached, db.steps[i].cached].filter((c) => !c).length;
      expect(computed, da.steps[i].step).toBe(1);
    }
    expect(await listDir(path.join(box.cache, "objects"))).toHaveLength(6);
    expect((await ms(["cache", "verify"], box)).code).toBe(0);
  });
});
