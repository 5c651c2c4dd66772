/**
 * Test support: Debian's chromium (installed by tools/ensure-chromium.sh when missing) driven by
 * playwright-core, headless, offline and with a fresh profile, to look at a report as a person's
 * browser shows it. Also used by tools/report-screenshot.mjs through the same flags.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext } from "playwright-core";

const ENSURE = fileURLToPath(new URL("../../../../tools/ensure-chromium.sh", import.meta.url));

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The chromium binary, installed first when missing (minutes, once). */
export async function ensureChromium(timeoutMs = 15 * 60_000): Promise<string> {
  const child = spawn("bash", [ENSURE], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", resolve);
    });
    if (code !== 0) throw new Error(`${ENSURE} failed (exit ${code})`);
  } finally {
    clearTimeout(timer);
  }
  return out.trim().split("\n").pop()!;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A headless chromium with a fresh --user-data-dir, removed on close. */
export async function openBrowser(executablePath: string): Promise<Browser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), "ms-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1200, height: 900 },
    timeout: 60_000,
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
