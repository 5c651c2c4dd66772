#!/usr/bin/env node
/**
 * The `ms` bin: `ms run`, `ms cache ...`, `ms runs ...` (see cli.ts).
 */
import { main } from "./cli.js";

process.exitCode = await main(process.argv.slice(2));
