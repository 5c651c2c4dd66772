/**
 * The evaluation's interruption check: between batches and predict calls, an aborted signal (the
 * driver's Ctrl-C) ends the step with its reason, so nothing partial is published.
 */
import { InterruptedError } from "@ms/contracts";

export function checkSignal(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof Error ? reason : new InterruptedError("ranking: interrupted");
}
