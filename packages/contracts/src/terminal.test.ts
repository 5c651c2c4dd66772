/**
 * Control characters from others' text never reach the terminal raw: terminalSafe, and the bins'
 * text output and error messages through runCli.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { createLogger, terminalSafe } from "./index.js";

const ESC = "\u001b";

describe("terminalSafe", () => {
  it("escapes C0 (but tab and newline), DEL and C1 controls, and keeps other text", () => {
    expect(terminalSafe(`a${ESC}]0;pwned\u0007b`)).toBe("a\\u001b]0;pwned\\u0007b");
    expect(terminalSafe("x\u009b2Jy\u007f")).toBe("x\\u009b2Jy\\u007f");
    expect(terminalSafe("tab\tnew\nline é ✓")).toBe("tab\tnew\nline é ✓");
  });

  it("a bin's text output and its error message carry no raw escape", () => {
    const dist = path.resolve(__dirname, "../dist/index.js");
    const script = `
      import { runCli, BadInputError } from ${JSON.stringify(dist)};
      const fail = process.argv[1] === "fail";
      process.exitCode = await runCli({ name: "t", summary: "t", usage: "t", options: {}, allowPositionals: true,
        async run() {
          if (fail) throw new BadInputError("title ${ESC}[2J is bad");
          return { json: {}, text: "Title ${ESC}]8;;http://x${ESC}\\\\link${ESC}]8;;${ESC}\\\\" };
        } }, process.argv.slice(1));`;
    const ok = spawnSync(process.execPath, ["--input-type=module", "-e", script, "ok"], { encoding: "utf8" });
    expect(ok.stdout).not.toContain(ESC);
    expect(ok.stdout).toContain("Title \\u001b]8;;http://x");
    const bad = spawnSync(process.execPath, ["--input-type=module", "-e", script, "fail"], { encoding: "utf8" });
    expect(bad.status).toBe(3);
    expect(bad.stderr).not.toContain(ESC);
    expect(bad.stderr).toContain("title \\u001b[2J is bad");
  });

  it("a terminal logger shows a message's and a field's control characters escaped", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString("utf8"));
        done();
      },
    });
    createLogger({ level: "info", pretty: true, destination: sink }).warn({ title: `A${ESC}[2J` }, `bad ${ESC}]0;x\u0007 record`);
    const record: { msg: string; title: string } = JSON.parse(lines.join(""));
    expect(record.msg).toBe("bad \\u001b]0;x\\u0007 record");
    expect(record.title).toBe("A\\u001b[2J");
  });
});
