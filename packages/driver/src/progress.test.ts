/**
 * Live progress through the built bin: in a real pseudo-terminal (util-linux `script`) `ms run`
 * draws one line per step, updated in place (ALS iterations with an ETA, keras epochs), and ends
 * with the summary: where the model, the report and the runs are, and the next commands. Piped,
 * stderr stays JSON lines with no progress records, and `--json` stdout is one document.
 */
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, SMALL, ms, sandbox, type Sandbox } from "./__tests__/harness.js";

const hasScript = spawnSync("script", ["--version"]).status === 0;
let box: Sandbox;
beforeAll(async () => {
  box = await sandbox("ms-driver-progress-");
});
afterAll(async () => box.dispose());

describe("ms run progress", () => {
  it.skipIf(!hasScript)("on a terminal: a line per step updated in place, then the summary with the next commands", async () => {
    const log = path.join(box.root, "tty.log");
    const args = ["run", ...SMALL, "-P", "als_max_iter=3", "-P", "keras_epochs=2"].map((a) => `'${a}'`).join(" ");
    const r = spawnSync("script", ["-qfec", `${process.execPath} ${BIN} ${args}`, log], {
      cwd: box.root,
      env: { ...box.env, LOG_LEVEL: "info", TERM: "xterm" },
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const screen = stripVTControlCharacters(await readFile(log, "utf8")).replace(/\r/g, "\n");
    if (process.env.MS_DEBUG_TTY) console.log(screen);
    for (const step of ["download", "etl", "als", "fm", "keras", "rank"])
      expect(screen).toMatch(new RegExp(`✔ ${step}\\s+computed\\s+\\d+\\.\\d\\d s`));
    // The rate needs two counts: from iteration 2 on (issue 24: a rate since the step's start was 5x off).
    expect(screen).toMatch(/als\s+[\d.]+ s, ETA [\d.]+ s\s+iteration 2\/3\s+loss=[\d.]+/);
    expect(screen).toMatch(/keras\s+[\d.]+ s, ETA [\d.]+ s\s+epoch 1\/2\s+loss=[\d.]+\s+val_loss=[\d.]+/);
    // Log records do not scroll past: no pino-pretty lines.
    expect(screen).not.toMatch(/INFO.*\(ms run/);
    expect(screen).toMatch(/\nnext:\n\s+ms recommend --user 1/);
    expect(screen).toMatch(/report\s+\S+report\.html/);
    expect(screen).toMatch(/model\s+\S+objects\/[0-9a-f]{64}/);
  });

  it("piped: stderr is JSON lines only, without progress records; --json stdout is one document", async () => {
    const r = await ms(["run", ...SMALL, "-P", "als_max_iter=3", "--json", "--force", "als"], box);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split("\n").filter((l) => l.trim());
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.some((l) => JSON.parse(l).msg === "als: iteration")).toBe(false);
    expect(Object.keys(JSON.parse(r.stdout)).sort()).toEqual(["report", "runId", "steps"]);
  });
});
