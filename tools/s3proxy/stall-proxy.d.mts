/** Types of stall-proxy.mjs: a loopback proxy that cuts chosen response bodies halfway and goes silent. */
import type { IncomingMessage } from "node:http";

export interface StallProxy {
  endpoint: string;
  stalled(): number;
  stop(): Promise<void>;
}
export function startStallProxy(target: string, options?: { stall?: (req: IncomingMessage) => boolean }): Promise<StallProxy>;
