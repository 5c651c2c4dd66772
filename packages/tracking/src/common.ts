/**
 * Behaviour both stores share so that they answer alike: the user and default run name, which
 * value of a metric counts as "latest", the search order and filters, and page tokens.
 */
import os from "node:os";
import { BadParameterError, parseJsonText } from "@ms/contracts";
import * as v from "valibot";
import type { RunQuery } from "./store.js";
import type { Metric, Run } from "./types.js";

export function currentUser(): string {
  try {
    return os.userInfo().username || "unknown";
  } catch {
    return "unknown";
  }
}

export function defaultRunName(runId: string): string {
  return `run-${runId.slice(0, 8)}`;
}

/** MLflow's rule: the highest step, then the latest timestamp, then the largest value. */
export function latestMetric(history: readonly Metric[]): Metric | undefined {
  let best: Metric | undefined;
  for (const m of history) {
    if (
      !best ||
      m.step > best.step ||
      (m.step === best.step && (m.timestamp > best.timestamp || (m.timestamp === best.timestamp && m.value > best.value)))
    )
      best = m;
  }
  return best;
}

export function matchesSearch(run: Run, query: RunQuery): boolean {
  if (query.status !== undefined && run.info.status !== query.status) return false;
  for (const [k, v] of query.tags) if (run.tags[k] !== v) return false;
  for (const [k, v] of query.params) if (run.params[k] !== v) return false;
  return true;
}

export function newestFirst(a: Run, b: Run): number {
  return b.info.startTime - a.info.startTime || (a.info.runId < b.info.runId ? -1 : a.info.runId > b.info.runId ? 1 : 0);
}

const PageTokenSchema = v.object({ offset: v.pipe(v.number(), v.integer(), v.minValue(0)) });

/** The same token shape as MLflow's file store: base64 of `{"offset": n}`. */
export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString("base64");
}

export function decodePageToken(token: string | undefined): number {
  if (token === undefined || token === "") return 0;
  const text = Buffer.from(token, "base64").toString("utf8");
  const notOurs = (why: string) =>
    new BadParameterError("pageToken", `${JSON.stringify(token)} is not a page token this store issued (${why})`);
  return parseJsonText(text, PageTokenSchema, "page token", { error: notOurs }).offset;
}
