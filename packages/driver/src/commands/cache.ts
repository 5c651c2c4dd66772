/**
 * `ms cache ls|verify|gc|push|pull`: its flags, and @ms/cache's `listCache`, `verifyCache`,
 * `gcCache` (with the steps' cleaners), `pushEntries` and `pullEntries` (to and from @ms/cache-s3's
 * remote, stopped by Ctrl-C through @ms/contracts' `abortOnSignals`) printed as tables.
 */
import {
  BadParameterError,
  CorruptArtifactError,
  abortOnSignals,
  formatTable,
  parseIntegerFlag,
  type CliSpec,
  type Logger,
} from "@ms/contracts";
import { gcCache, listCache, parseAge, pullEntries, pushEntries, verifyCache } from "@ms/cache";
import { S3RemoteStore } from "@ms/cache-s3";
import { defaultCacheDir } from "../pipeline.js";
import { CLEANERS, PIPELINE } from "../steps.js";
import { SHARED_OPTIONS, remoteCacheUrl } from "./options.js";

const CACHE_OPTIONS = {
  "cache-dir": SHARED_OPTIONS["cache-dir"],
  step: { type: "string", value: "STEP", description: "ls: only entries of this step" },
  remove: { type: "boolean", description: "verify: delete damaged entries (the next run recomputes them)" },
  "older-than": { type: "string", value: "AGE", description: "gc: remove entries not used for AGE (30d, 12h, 90m, 0)" },
  keep: { type: "string", value: "N", description: "gc: keep at most N entries per step, most recently used first" },
  "dry-run": { type: "boolean", description: "gc: only report what would be removed" },
  remote: { type: "boolean", description: "ls: the entries of the remote cache instead" },
  "remote-cache": SHARED_OPTIONS["remote-cache"],
  "remote-cache-endpoint": SHARED_OPTIONS["remote-cache-endpoint"],
  "remote-cache-signing-key": SHARED_OPTIONS["remote-cache-signing-key"],
} as const;

type CacheValues = Parameters<CliSpec<typeof CACHE_OPTIONS>["run"]>[0];
type CacheResult = { json: unknown; text: string };

const human = (n: number) =>
  n >= 1 << 30
    ? `${(n / (1 << 30)).toFixed(1)}G`
    : n >= 1 << 20
      ? `${(n / (1 << 20)).toFixed(1)}M`
      : n >= 1024
        ? `${(n / 1024).toFixed(1)}K`
        : `${n}B`;
const shortParams = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === "string" && v.length > 40 ? `...${v.slice(-37)}` : String(v)}`)
    .join(" ");

export const cacheSpec: CliSpec<typeof CACHE_OPTIONS> = {
  name: "ms cache",
  summary: "list, verify, garbage-collect and share (push, pull) the step cache",
  usage:
    "ms cache ls [--step STEP] [--remote] | verify [--remove] | gc [--older-than AGE] [--keep N] [--dry-run] | push [KEY...] | pull KEY...  [--cache-dir DIR] [--remote-cache URL] [--json]",
  options: CACHE_OPTIONS,
  allowPositionals: true,
  epilog: [
    "Commands:",
    "  ls      entries: key, step, parameters, size, created, last used, producing run",
    "  verify  re-hash every entry against its manifest (exit 5 when one is damaged, unless --remove)",
    "  gc      remove entries by age and/or count per step, and leftovers of killed runs",
    "  push    upload local entries (all, or the KEYs given) to the remote cache (--remote-cache or $MS_REMOTE_CACHE)",
    "  pull    download the entries KEY... (a key or a unique prefix of one) from the remote cache into the local one",
    "  ls --remote  the entries of the remote cache",
  ].join("\n"),
  async run(values, positionals, ctx) {
    const [command, ...rest] = positionals;
    if (rest.length && command !== "push" && command !== "pull")
      throw new BadParameterError(command ?? "cache", `unexpected arguments: ${rest.join(" ")}`);
    const dir = values["cache-dir"] ?? defaultCacheDir();
    ctx.logger.debug({ cacheDir: dir, command }, "cache command");
    const remoteOf = (mode: "read" | "write") => {
      const url = remoteCacheUrl(values["remote-cache"]);
      if (!url)
        throw new BadParameterError(
          "--remote-cache",
          `ms cache ${command ?? ""} needs the remote cache: --remote-cache s3://BUCKET/PREFIX or MS_REMOTE_CACHE`,
        );
      return new S3RemoteStore({
        url,
        mode,
        required: true,
        endpoint: values["remote-cache-endpoint"],
        signingKey: values["remote-cache-signing-key"],
        logger: ctx.logger,
      });
    };
    switch (command) {
      case "push":
        return pushCommand(dir, remoteOf("write"), rest, ctx.logger);
      case "pull":
        return pullCommand(dir, remoteOf("read"), rest, ctx.logger);
      case "ls":
        return values.remote ? lsRemoteCommand(remoteOf("read"), values.step) : lsCommand(dir, values.step);
      case "verify":
        return verifyCommand(dir, values.remove === true);
      case "gc":
        return gcCommand(dir, values);
      default:
        throw new BadParameterError(
          "command",
          `${command === undefined ? "missing" : `unknown "${command}"`}; use ls, verify, gc, push or pull (see 'ms cache --help')`,
        );
    }
  },
};

/** `ms cache ls`: the local entries. */
async function lsCommand(dir: string, step: string | undefined): Promise<CacheResult> {
  const entries = await listCache(dir, { step });
  const rows = entries.map((e) => [
    e.key.slice(0, 12),
    e.step,
    human(e.bytes),
    e.createdAt?.slice(0, 19) ?? "?",
    e.lastUsedAt?.slice(0, 19) ?? "?",
    e.producedByRun?.slice(0, 12) ?? "-",
    shortParams(e.params),
  ]);
  return {
    json: { cacheDir: dir, entries },
    text: entries.length ? formatTable(rows, ["key", "step", "size", "created", "last used", "run", "params"]) : `no entries in ${dir}`,
  };
}

/** `ms cache ls --remote`: the remote cache's entries. */
async function lsRemoteCommand(remote: S3RemoteStore, step: string | undefined): Promise<CacheResult> {
  const entries = (await remote.listEntries()).filter((e) => !step || e.step === step);
  const rows = entries.map((e) => [
    e.key.slice(0, 12),
    e.step,
    human(e.bytes),
    e.pushedAt?.slice(0, 19) ?? "?",
    e.producedByRun?.slice(0, 12) ?? "-",
    shortParams(e.params),
  ]);
  return {
    json: { remote: remote.url, entries },
    text: entries.length ? formatTable(rows, ["key", "step", "size", "pushed", "run", "params"]) : `no entries in ${remote.url}`,
  };
}

/** `ms cache verify [--remove]`: a damaged entry left in place is exit 5. */
async function verifyCommand(dir: string, remove: boolean): Promise<CacheResult> {
  const report = await verifyCache(dir, { remove });
  const unremoved = report.damaged.filter((d) => !d.removed);
  if (unremoved.length) {
    throw new CorruptArtifactError(
      `${unremoved.length} of ${report.checked} cache entries are damaged (run 'ms cache verify --remove' or just rerun; damaged entries are recomputed):\n` +
        unremoved.map((d) => `  ${d.key} (${d.step}): ${d.problems.join("; ")}`).join("\n"),
    );
  }
  const text = `${report.checked} entries checked, ${report.damaged.length ? `${report.damaged.length} damaged and removed` : "all intact"}`;
  return { json: { cacheDir: dir, ...report }, text };
}

/** `ms cache gc`: entries by age and count, and what killed runs left (the steps' cleaners included). */
async function gcCommand(dir: string, values: CacheValues): Promise<CacheResult> {
  const keep = values.keep !== undefined ? parseIntegerFlag("--keep", values.keep, 0) : undefined;
  if (keep !== undefined && keep < 0) throw new BadParameterError("--keep", `must be >= 0, got ${keep}`);
  const report = await gcCache(dir, {
    olderThanMs: values["older-than"] !== undefined ? parseAge(values["older-than"]) : undefined,
    keepPerStep: keep,
    dryRun: values["dry-run"] === true,
    cleaners: CLEANERS,
  });
  const verb = report.dryRun ? "would remove" : "removed";
  const lines = report.removed.map((r) => `  ${r.key.slice(0, 12)}  ${r.step.padEnd(8)} ${human(r.bytes).padStart(7)}  (${r.reason})`);
  const leftovers = [
    `${report.leftovers.tmp.length} temporary directories`,
    `${report.leftovers.locks.length} stale locks`,
    ...CLEANERS.map((c) => `${report.leftovers[c.name]?.length ?? 0} ${c.what}`),
  ];
  const text = [
    `${verb} ${report.removed.length} entries (${human(report.freedBytes)})${lines.length ? ":" : ""}`,
    ...lines,
    `${verb} ${leftovers.join(", ")} of killed runs`,
    ...(report.skippedLocked.length ? [`skipped ${report.skippedLocked.length} entries being computed by a running ms`] : []),
  ].join("\n");
  return { json: { cacheDir: dir, ...report }, text };
}

/** Runs a transfer that Ctrl-C stops (its AbortSignal), leaving no entry behind. */
async function interruptible<T>(logger: Logger, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = abortOnSignals(logger, "stopping the transfer");
  try {
    return await run(interrupt.signal);
  } finally {
    interrupt.dispose();
  }
}

/** `ms cache push [KEY...]`: verified local entries of shareable steps to the remote cache. */
async function pushCommand(dir: string, remote: S3RemoteStore, keys: readonly string[], logger: Logger): Promise<CacheResult> {
  const unshared = new Map(PIPELINE.filter((s) => s.shareable === false).map((s) => [s.name, "its result names a file on this machine"]));
  const { pushed, skipped, bytes } = await interruptible(logger, (signal) =>
    pushEntries({
      cacheDir: dir,
      remote,
      keys,
      unshared,
      signal,
      onPushed: (p) => logger.info({ key: p.key.slice(0, 12), step: p.step, bytes: p.bytes }, `pushed ${p.step} ${p.key.slice(0, 12)}`),
    }),
  );
  const text = [
    `pushed ${pushed.length} entries to ${remote.url} (${human(bytes)} sent)`,
    ...skipped.map((s) => `  skipped ${s.key.slice(0, 12)} (${s.step}): ${s.reason}`),
  ].join("\n");
  return { json: { remote: remote.url, cacheDir: dir, pushed, skipped, bytes }, text };
}

/** `ms cache pull KEY...`: remote entries into the local cache (verified as a remote hit is). */
async function pullCommand(dir: string, remote: S3RemoteStore, keys: readonly string[], logger: Logger): Promise<CacheResult> {
  const pulled = await interruptible(logger, (signal) => pullEntries({ cacheDir: dir, remote, keys, signal }));
  const lines = pulled.map(
    (p) => `  ${p.key.slice(0, 12)}  ${p.step.padEnd(8)} ${p.source === "local" ? "already here" : `${human(p.bytes)} downloaded`}`,
  );
  return {
    json: { remote: remote.url, cacheDir: dir, pulled },
    text: [`pulled ${pulled.filter((p) => p.source === "remote").length} entries from ${remote.url}:`, ...lines].join("\n"),
  };
}
