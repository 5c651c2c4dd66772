/**
 * The `ms` command line: dispatches `ms run`, `ms recommend`, `ms predict` and `ms cache` to their
 * commands (src/commands/, each run through @ms/contracts' `runCli`) and `ms runs` to
 * @ms/tracking's `runsCommand`, and prints the main help. Nothing else lives here.
 */
import { EXIT_CODES, runCli, terminalSafe } from "@ms/contracts";
import { runsCommand } from "@ms/tracking";
import { cacheSpec } from "./commands/cache.js";
import { predictSpec, recommendSpec } from "./commands/models.js";
import { paramHelp, runArgv, runSpec } from "./commands/run.js";
import { serveSpec } from "./commands/serve.js";
import { STEPS } from "./steps.js";

export const MAIN_HELP = `ms: the ms pipeline (${STEPS.join(" -> ")}) with a content-addressed step cache and MLflow tracking

Usage:
  ms run [options]                 run the pipeline (ms run --help lists every parameter)
  ms recommend --user ID [--top N]  movies for a user, from the latest run's ranker (--users FILE|all: a batch, streamed)
  ms predict --user ID --movie ID   a predicted rating (or --pairs FILE, streamed)
  ms serve [--port 5000]           an HTTP scoring server (MLflow's protocol, /recommend) over the model
  ms cache ls|verify|gc|push|pull  inspect, prune and share the step cache
  ms runs ls|show|compare ...      list, show and compare tracked runs

Quick start (offline): ms run --dataset synthetic -P als_max_iter=2 -P keras_epochs=1

Exit codes: 0 ok, ${Object.entries(EXIT_CODES)
  .map(([code, n]) => `${n} ${code.toLowerCase()}`)
  .join(", ")}.
`;

/** Dispatches on the first argument; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run": {
      const help = rest.includes("--help") || rest.includes("-h");
      return runCli(runSpec(help ? paramHelp() : undefined), runArgv(rest));
    }
    case "cache":
      return runCli(cacheSpec, rest);
    case "recommend":
      return runCli(recommendSpec, rest);
    case "predict":
      return runCli(predictSpec, rest);
    case "serve":
      return runCli(serveSpec, rest);
    case "runs":
      return runsCommand(rest, { name: "ms runs" });
    case "--help":
    case "-h":
    case "help":
      process.stdout.write(MAIN_HELP);
      return 0;
    case undefined:
      process.stderr.write(MAIN_HELP);
      return EXIT_CODES.USAGE;
    default:
      process.stderr.write(
        `ms: error: unknown command "${terminalSafe(command)}"; use run, recommend, predict, serve, cache or runs (ms --help)\n`,
      );
      return EXIT_CODES.USAGE;
  }
}
