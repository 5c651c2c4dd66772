/**
 * TensorFlow.js backend selection. tfjs is loaded lazily, on the first training or loading call,
 * so importing @ms/keras costs nothing (the driver's fully cached run must stay fast).
 * `auto` and `fused` train with the fused WebAssembly kernel (fused.ts) and keep tfjs only to
 * hold and save the model, on the WASM backend (else `cpu`). Loading a model with `auto` tries
 * tfjs-node (native; an optional dependency whose addon tools/tfjs-node/build.sh builds), then
 * WASM with SIMD, then the pure-JS `cpu` backend. `node`, `wasm` and `cpu` train through tfjs
 * itself (the reference path).
 */
import { BadParameterError, type Logger } from "@ms/contracts";
import { createRequire } from "node:module";
import path from "node:path";

export type Tf = typeof import("@tensorflow/tfjs");

export const BACKEND_CHOICES = ["auto", "fused", "node", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
/** A tfjs backend under tfjs' own name (`tensorflow` is tfjs-node). */
export type TfBackendName = "tensorflow" | "wasm" | "cpu";
/** What trained a model: a tfjs backend, or `fused` (the WebAssembly kernel of fused.ts). */
export type BackendName = TfBackendName | "fused";

/** Whether a choice trains with the fused kernel rather than through tfjs. */
export function trainsFused(choice: BackendChoice): boolean {
  return choice === "auto" || choice === "fused";
}

export interface LoadedTf {
  tf: Tf;
  backend: TfBackendName;
  /** Why faster backends were skipped (empty when the first choice worked). */
  skipped: string[];
}

const loaded = new Map<BackendChoice, Promise<LoadedTf>>();

/** Loads tfjs with the requested backend; memoised, since tfjs keeps one global engine. */
export function loadTf(choice: BackendChoice = "auto", logger?: Logger): Promise<LoadedTf> {
  let p = loaded.get(choice);
  if (!p) {
    p = select(choice);
    loaded.set(choice, p);
    p.catch(() => loaded.delete(choice));
  }
  return p.then(async (result) => {
    // Another choice may have switched the global engine since; switch back.
    if (result.tf.getBackend() !== result.backend) await result.tf.setBackend(result.backend);
    for (const reason of result.skipped) logger?.debug({ reason }, "keras: backend skipped");
    return result;
  });
}

async function select(choice: BackendChoice): Promise<LoadedTf> {
  const skipped: string[] = [];
  // `fused` only needs tfjs to hold and save weights: the light backends, not a 700 MB libtensorflow.
  if (choice === "auto" || choice === "node") {
    try {
      // libtensorflow logs its info lines (CPU features) straight to stderr, which must stay JSON
      // lines for `--json` and piped runs: keep it to warnings and errors unless the user chose.
      process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
      const tf: Tf = await import("@tensorflow/tfjs-node");
      if (await tf.setBackend("tensorflow")) return { tf, backend: "tensorflow", skipped };
      throw new Error("the tensorflow backend did not initialise");
    } catch (error) {
      const reason = `tfjs-node: ${firstLine(error)}`;
      if (choice === "node")
        throw new BadParameterError("backend", `"node" was requested but @tensorflow/tfjs-node cannot be loaded (${reason})`);
      skipped.push(reason);
    }
  }
  const tf = await import("@tensorflow/tfjs");
  if (choice === "auto" || choice === "fused" || choice === "wasm") {
    try {
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      wasm.setWasmPaths(wasmDistDir());
      if (await tf.setBackend("wasm")) return { tf, backend: "wasm", skipped };
      throw new Error("the wasm backend did not initialise");
    } catch (error) {
      const reason = `wasm: ${firstLine(error)}`;
      if (choice === "wasm") throw new BadParameterError("backend", `"wasm" was requested but it cannot be initialised (${reason})`);
      skipped.push(reason);
    }
  }
  await tf.setBackend("cpu");
  return { tf, backend: "cpu", skipped };
}

/**
 * The directory holding the .wasm binaries inside the npm package. Node cannot fetch file URLs,
 * so tfjs gets a plain path prefix, resolved the same way from dist and from sources under vitest.
 */
export function wasmDistDir(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("@tensorflow/tfjs-backend-wasm");
  return path.dirname(entry) + path.sep;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
