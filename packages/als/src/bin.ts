#!/usr/bin/env node
/**
 * `ms-als`: trains explicit ALS-WR factors from an etl ratings artifact. Thin: flags become the
 * step's typed parameters, the library does the work, and the result is printed. SIGINT/SIGTERM
 * abort the step (exit 130, nothing published); a second one exits at once.
 */
import { abortOnSignals, BadParameterError, formatTable, parseIntegerFlag, parseNumberFlag, runCli } from "@ms/contracts";
import { als, ALS_DEFAULTS, type AlsParams } from "./als.js";

await runCli({
  name: "ms-als",
  summary: "train explicit ALS (ALS-WR, Spark MLlib semantics) user and movie factors",
  usage: "ms-als --ratings-data PATH --out DIR [options]",
  options: {
    "ratings-data": { type: "string", value: "PATH", description: "the etl output directory or its ratings.parquet" },
    out: { type: "string", value: "DIR", description: "output directory (created; an earlier factors output is replaced)" },
    rank: { type: "string", value: "N", description: `number of latent factors (default ${ALS_DEFAULTS.rank})` },
    "max-iter": { type: "string", value: "N", description: `iterations, each updating movies then users (default ${ALS_DEFAULTS.maxIter})` },
    "reg-param": { type: "string", value: "X", description: `regularisation lambda, times each row's rating count (default ${ALS_DEFAULTS.regParam})` },
    "split-prop": { type: "string", value: "P", description: `training fraction of the deterministic split (default ${ALS_DEFAULTS.splitProp})` },
    seed: { type: "string", value: "N", description: `seed of the split and the initial factors (default ${ALS_DEFAULTS.seed})` },
    "num-threads": { type: "string", value: "N", description: "threads for the sweeps (default: all cores); results do not depend on it" },
    "cold-start-strategy": { type: "string", value: "drop|nan", description: `test rows without factors: drop them, or score NaN (default ${ALS_DEFAULTS.coldStartStrategy})` },
    nonnegative: { type: "boolean", description: "constrain factors to be non-negative (NNLS per row)" },
  },
  async run(values, _positionals, ctx) {
    const ratings = values["ratings-data"];
    const out = values.out;
    if (!ratings) throw new BadParameterError("--ratings-data", "is required");
    if (!out) throw new BadParameterError("--out", "is required");
    const params: Partial<AlsParams> = {
      rank: parseIntegerFlag("--rank", values.rank, ALS_DEFAULTS.rank),
      maxIter: parseIntegerFlag("--max-iter", values["max-iter"], ALS_DEFAULTS.maxIter),
      regParam: parseNumberFlag("--reg-param", values["reg-param"], ALS_DEFAULTS.regParam),
      splitProp: parseNumberFlag("--split-prop", values["split-prop"], ALS_DEFAULTS.splitProp),
      seed: parseIntegerFlag("--seed", values.seed, ALS_DEFAULTS.seed),
      numThreads: values["num-threads"] === undefined ? undefined : parseIntegerFlag("--num-threads", values["num-threads"], 1),
      coldStartStrategy: (values["cold-start-strategy"] ?? ALS_DEFAULTS.coldStartStrategy) as AlsParams["coldStartStrategy"],
      nonnegative: Boolean(values.nonnegative),
    };
    const interrupt = abortOnSignals(ctx.logger);
    let result;
    try {
      result = await als({ ratings }, params, out, { logger: ctx.logger, progress: ctx.interactive, signal: interrupt.signal });
    } finally {
      interrupt.dispose();
    }
    const m = result.metrics;
    return {
      json: { outputs: { userFactors: { path: result.paths.userFactors }, itemFactors: { path: result.paths.itemFactors } }, metrics: m },
      text: [
        `factors: ${result.outputs.factors.dir}`,
        "",
        formatTable(
          Object.entries(m).map(([k, v]) => [k, v]),
          ["metric", "value"],
        ),
      ].join("\n"),
    };
  },
});
