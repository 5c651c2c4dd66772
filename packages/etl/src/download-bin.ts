#!/usr/bin/env node
/**
 * `ms-download`: fetch (or find, or generate) a MovieLens ratings file and print where it is.
 */
import { abortOnSignals, BadParameterError, formatTable, parseIntegerFlag, runCli } from "@ms/contracts";
import { DATASET_NAMES, defaultCacheDir, loadRawData } from "./datasets.js";
import { SYNTHETIC_DEFAULTS, SYNTHETIC_KINDS } from "./synthetic.js";

await runCli({
  name: "ms-download",
  summary: "get a MovieLens dataset: local mirror, download cache, checksum-verified download, or synthetic",
  usage: "ms-download [--dataset NAME | --url URL] [--data-dir DIR] [--cache-dir DIR] [--rows N --seed N --kind KIND] [--json]",
  options: {
    dataset: { type: "string", value: "NAME", description: `${DATASET_NAMES.join(", ")} (default ml-latest-small)` },
    url: { type: "string", value: "URL", description: "any MovieLens-layout zip; verified against URL.md5 when present" },
    "data-dir": { type: "string", value: "DIR", description: "local mirror holding NAME/ratings.csv (default $MS_DATASETS_DIR)" },
    "cache-dir": { type: "string", value: "DIR", description: "where downloads are kept (default $MS_CACHE_DIR or ~/.cache/ms)" },
    rows: { type: "string", value: "N", description: `synthetic only: number of ratings (default ${SYNTHETIC_DEFAULTS.rows})` },
    seed: { type: "string", value: "N", description: `synthetic only: seed (default ${SYNTHETIC_DEFAULTS.seed})` },
    kind: {
      type: "string",
      value: "KIND",
      description: `synthetic only: ${SYNTHETIC_KINDS.join(", ")} (default ${SYNTHETIC_DEFAULTS.kind})`,
    },
    timeout: { type: "string", value: "SECONDS", description: "fail when the server sends nothing for this long (default 30)" },
    deadline: {
      type: "string",
      value: "SECONDS",
      description: "fail when the archive download takes longer than this in all (default 3600)",
    },
  },
  epilog: "MS_MAX_DOWNLOAD_BYTES caps the archive size (default 2 GiB).",
  async run(values, _positionals, { logger }) {
    const timeout = parseIntegerFlag("--timeout", values.timeout, 30);
    if (timeout < 1) throw new BadParameterError("--timeout", "must be at least 1 second");
    const deadline = parseIntegerFlag("--deadline", values.deadline, 3600);
    if (deadline < 1) throw new BadParameterError("--deadline", "must be at least 1 second");
    // Ctrl-C stops a transfer at once and still cleans up; a second one quits without waiting.
    const kind = SYNTHETIC_KINDS.find((k) => k === (values.kind ?? SYNTHETIC_DEFAULTS.kind));
    if (!kind) throw new BadParameterError("--kind", `must be one of ${SYNTHETIC_KINDS.join(", ")}, got ${values.kind}`);
    const interrupt = abortOnSignals(logger, "stopping the download");
    const dataset = await loadRawData(
      {
        dataset: values.dataset ?? "ml-latest-small",
        url: values.url,
        dataDir: values["data-dir"],
        cacheDir: values["cache-dir"] ?? defaultCacheDir(),
        rows: parseIntegerFlag("--rows", values.rows, SYNTHETIC_DEFAULTS.rows),
        seed: parseIntegerFlag("--seed", values.seed, SYNTHETIC_DEFAULTS.seed),
        kind,
        idleTimeoutMs: timeout * 1000,
        deadlineMs: deadline * 1000,
      },
      { logger, signal: interrupt.signal },
    ).finally(() => interrupt.dispose());
    return {
      json: {
        outputs: { ratings: { path: dataset.ratingsFile, digest: dataset.digest, format: dataset.format ?? null } },
        source: dataset.source,
        dataset: dataset.name,
      },
      text: formatTable([
        ["dataset", dataset.name],
        ["ratings", dataset.ratingsFile],
        ["source", dataset.source],
        ["digest", dataset.digest],
      ]),
    };
  },
});
