/**
 * What a step is given and what it returns. Steps report through this context only, so they run
 * the same whether a bin, a test or the driver (which forwards metrics to a tracker) calls them.
 */
import type { Logger } from "pino";
import type { ArtifactRef } from "./artifact.js";

export interface MetricsSink {
  /** A metric value; `step` is the iteration or epoch for series such as training loss. */
  metric(key: string, value: number, step?: number): void;
}

export interface StepContext {
  logger: Logger;
  metrics?: MetricsSink;
  signal?: AbortSignal;
  /** Whether to draw per-iteration progress (bins turn it on when stderr is a terminal). */
  progress?: boolean;
}

/** What every step returns: its published outputs and its final metrics. */
export interface StepResult<O extends Record<string, ArtifactRef>, M extends Record<string, number | string>> {
  outputs: O;
  metrics: M;
}

/** Collects metrics in memory; handy for tests and for bins that print them at the end. */
export class MemoryMetrics implements MetricsSink {
  readonly values: { key: string; value: number; step: number | undefined }[] = [];
  metric(key: string, value: number, step?: number): void {
    this.values.push({ key, value, step });
  }
}
