#!/usr/bin/env node
/**
 * `ms-etl`: a MovieLens ratings file (or a dataset) -> ratings.parquet + manifest.json in --out.
 * Generated from the download and etl steps' definitions, run as a chain: `--ratings-csv FILE`
 * (or `--dataset NAME`) finds the ratings, `--max-row-limit N` and the other etl flags convert
 * them; every flag is the `ms run` parameter of the same name.
 */
import { runStepCli } from "@ms/contracts";
import { downloadStep, etlStep } from "./step.js";

await runStepCli([downloadStep, etlStep], {
  // The conversion does not watch a signal: Ctrl-C ends ms-etl at once, and its staging directory goes with it.
  abortOnSignals: false,
  name: "ms-etl",
  summary: "convert a MovieLens ratings file (CSV, ratings.dat or u.data) or a dataset to Parquet with DuckDB",
});
