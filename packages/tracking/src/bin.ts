#!/usr/bin/env node
/**
 * The `ms-runs` bin: `ls`, `show` and `compare` over runs in either store (see cli.ts).
 */
import { runsCommand } from "./cli.js";

await runsCommand(process.argv.slice(2));
