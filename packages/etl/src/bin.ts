#!/usr/bin/env node
/**
 * `ms-etl`: a MovieLens ratings file -> ratings.parquet + manifest.json in --out.
 */
import path from "node:path";
import { BadParameterError, formatTable, parseIntegerFlag, runCli } from "@ms/contracts";
import { etl, ETL_DEFAULTS } from "./etl.js";
import { parseFormat } from "./formats.js";

await runCli({
  name: "ms-etl",
  summary: "convert a MovieLens ratings file (CSV, ratings.dat or u.data) to Parquet with DuckDB",
  usage: "ms-etl --ratings-csv PATH --out DIR [--max-row-limit N] [--keep-timestamp] [--dedupe latest] [--format auto|csv|dat|tsv] [--json]",
  options: {
    "ratings-csv": { type: "string", value: "PATH", description: "ratings file in any MovieLens format (required)" },
    out: { type: "string", value: "DIR", description: "output directory (created; an earlier ratings output there is replaced)" },
    "max-row-limit": { type: "string", value: "N", description: `keep the first N rows in file order; -1 keeps all (default ${ETL_DEFAULTS.maxRowLimit})` },
    "keep-timestamp": { type: "boolean", description: "keep the timestamp column (dropped by default)" },
    dedupe: { type: "string", value: "off|latest", description: "latest: keep the newest rating of each (user, movie) pair (default off)" },
    format: { type: "string", value: "FORMAT", description: "auto (default), csv, dat (ml-1m/10m ratings.dat) or tsv (ml-100k u.data)" },
  },
  async run(values, _positionals, { logger }) {
    if (!values["ratings-csv"]) throw new BadParameterError("--ratings-csv", "is required");
    if (!values.out) throw new BadParameterError("--out", "is required");
    const dedupe = values.dedupe ?? "off";
    if (dedupe !== "off" && dedupe !== "latest") throw new BadParameterError("--dedupe", `must be off or latest, got "${dedupe}"`);
    const result = await etl(
      { ratingsCsv: values["ratings-csv"] },
      {
        maxRowLimit: parseIntegerFlag("--max-row-limit", values["max-row-limit"], ETL_DEFAULTS.maxRowLimit),
        keepTimestamp: Boolean(values["keep-timestamp"]),
        dedupe,
        format: parseFormat(values.format),
      },
      values.out,
      { logger },
    );
    const file = path.join(result.outputs.ratings.dir, "ratings.parquet");
    return {
      json: {
        outputs: { ratings: { path: file, dir: result.outputs.ratings.dir, digest: result.outputs.ratings.digest, rows: result.manifest.details.rows } },
        metrics: result.metrics,
      },
      text: formatTable(
        [
          ["output", file],
          ["rows", result.metrics.rows],
          ["duplicates dropped", result.metrics.duplicates_dropped],
          ["bytes", result.metrics.output_bytes],
          ["seconds", result.metrics.seconds],
          ["digest", result.outputs.ratings.digest],
        ],
      ),
    };
  },
});
