/**
 * A step's metric history kept with its cache entry: the runner (ms's driver) writes what the step reported
 * while computing (per-iteration `train_loss`, per-epoch `loss`/`val_loss`, final values) into
 * `metrics.json` beside the step's files, records its digest in entry.json, and replays it into
 * the child run of every later hit, so a cached run logs the same metrics and curves as the run
 * that computed it. Timestamps are kept as offsets, so a replay keeps the original spacing.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { CorruptArtifactError, digestOf, parseJsonText, type Digest } from "@ms/contracts";
import type { MetricInput } from "./types.js";

export const HISTORY_FILE = "metrics.json";

export interface HistoryPoint {
  key: string;
  value: number;
  step: number;
  /** Milliseconds after the first point. */
  offsetMs: number;
}

/** metrics.json: a list of points; a point this version cannot use (a NaN value written as null) is skipped. */
const HistoryFileSchema = v.object({ metrics: v.array(v.unknown()) });
const HistoryPointSchema = v.object({ key: v.string(), value: v.number(), step: v.pipe(v.number(), v.integer()), offsetMs: v.number() });

/** Writes the history into an entry being built; resolves to the digest entry.json records. */
export async function writeHistory(dir: string, metrics: readonly MetricInput[]): Promise<Digest> {
  const first = metrics.length ? (metrics[0].timestamp ?? 0) : 0;
  const points: HistoryPoint[] = metrics.map((m) => ({
    key: m.key,
    value: m.value,
    step: m.step ?? 0,
    offsetMs: Math.max(0, (m.timestamp ?? first) - first),
  }));
  const text = JSON.stringify({ metrics: points }) + "\n";
  await fs.writeFile(path.join(dir, HISTORY_FILE), text);
  return digestOf(text);
}

/**
 * The history of an entry, checked against the digest its entry.json records. Undefined when the
 * entry predates histories (no digest); throws when the file is missing or differs (a
 * `CorruptArtifactError` when it is not the file recorded or not a history).
 */
export async function readHistory(dir: string, digest: string | undefined): Promise<HistoryPoint[] | undefined> {
  if (digest === undefined) return undefined;
  const file = path.join(dir, HISTORY_FILE);
  const text = await fs.readFile(file, "utf8");
  if (digestOf(text) !== digest)
    throw new CorruptArtifactError(`${file}: its digest ${digestOf(text)} is not the ${digest} recorded in entry.json`);
  const { metrics } = parseJsonText(text, HistoryFileSchema, file);
  return metrics.flatMap((p) => {
    const point = v.safeParse(HistoryPointSchema, p);
    return point.success ? [point.output] : [];
  });
}

/** History points as metrics to log now, spaced as they were. */
export function replay(points: readonly HistoryPoint[], now = Date.now()): MetricInput[] {
  const last = points.reduce((m, p) => Math.max(m, p.offsetMs), 0);
  return points.map((p) => ({ key: p.key, value: p.value, step: p.step, timestamp: now - last + p.offsetMs }));
}
